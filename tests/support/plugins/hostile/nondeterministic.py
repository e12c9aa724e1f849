import torch
from _common import Base

from ntire_bench.plugins import Submission


class Net(Base):
    def forward(self, x):
        return self.upscale(x) + torch.rand(1).item()  # differs on every call


SUBMISSION = Submission(name="nondeterministic", team="hostile", model=Net, requires_weights=False)
