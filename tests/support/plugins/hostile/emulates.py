"""Computes each image once, then fakes the output of every slightly different input cheaply:
the cached output plus the input's change, upscaled. It responds to its input, but it is not
the network. It behaves while traced, so that its counted graph is the network's."""

import torch
import torch.nn.functional as F
from _common import Residual, seen_before

from ntire_bench.plugins import Submission


class Net(Residual):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        if torch.jit.is_tracing():
            return super().forward(x)
        hit = seen_before(self.seen, x)
        if hit is None:
            self.seen.append((x.clone(), super().forward(x)))
            return self.seen[-1][1].clone()
        x0, y0 = hit
        return y0 + F.interpolate(x - x0, scale_factor=4, mode="nearest")


SUBMISSION = Submission(name="emulates", team="hostile", model=Net, requires_weights=False)
