"""Runs a cheap network while it is traced or hooked (fvcore traces, the official counters hook Conv2d
layers) and the real one otherwise: counted, it looks like a single small convolution."""

import torch
import torch.nn.functional as F
from torch import nn
from _common import Residual

from ntire_bench.plugins import Submission


class Net(Residual):
    def __init__(self):
        super().__init__()
        self.cheap = nn.Conv2d(3, 48, 1)

    def forward(self, x):
        hooked = any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())
        if torch.jit.is_tracing() or hooked:
            return F.interpolate(x, scale_factor=4, mode="nearest") + 0.01 * self.shuffle(self.cheap(x))
        return super().forward(x)


SUBMISSION = Submission(name="hides_from_tracer", team="hostile", model=Net, requires_weights=False)
