"""Runs a cheap network on square inputs, like the official counting input (256x256), and the real one on
everything else (the images it is scored on are not square): the counters only ever see the cheap one."""

import torch.nn.functional as F
from torch import nn
from _common import Residual

from ntire_bench.plugins import Submission


class Net(Residual):
    def __init__(self):
        super().__init__()
        self.cheap = nn.Conv2d(3, 48, 1)

    def forward(self, x):
        if x.shape[-2] == x.shape[-1]:
            return F.interpolate(x, scale_factor=4, mode="nearest") + 0.01 * self.shuffle(self.cheap(x))
        return super().forward(x)


SUBMISSION = Submission(name="cheap_at_count_size", team="hostile", model=Net, requires_weights=False)
