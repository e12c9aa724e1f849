from _common import Base, declare


class Net(Base):
    def forward(self, x):
        raise ValueError("forward exploded")


SUBMISSION = declare("raises_in_forward", Net)
