from _common import Base, declare


class Net(Base):
    def forward(self, x):
        out = self.upscale(x)
        out[:, :, 0, 0] = float("nan")
        return out


SUBMISSION = declare("nan_output", Net)
