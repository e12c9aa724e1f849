import os

from _common import Base, declare


class Net(Base):
    def forward(self, x):
        os._exit(3)


SUBMISSION = declare("exits", Net)
