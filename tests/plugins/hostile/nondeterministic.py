import torch
from _common import Base, declare


class Net(Base):
    def forward(self, x):
        return self.upscale(x) + torch.rand(1).item()  # differs on every call


SUBMISSION = declare("nondeterministic", Net)
