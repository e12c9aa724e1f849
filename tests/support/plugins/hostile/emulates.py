"""Computes each image once, then fakes the output of every slightly different input cheaply:
the cached output plus the input's change, upscaled. It responds to its input, but it is not
the network."""

import torch.nn.functional as F
from _common import Residual

from ntire_bench.plugins import Submission


class Net(Residual):
    def __init__(self):
        super().__init__()
        self.seen = {}

    def forward(self, x):
        key = tuple(x.shape)
        if key not in self.seen:
            self.seen[key] = (x.clone(), super().forward(x))
            return self.seen[key][1].clone()
        x0, y0 = self.seen[key]
        return y0 + F.interpolate(x - x0, scale_factor=4, mode="nearest")


SUBMISSION = Submission(name="emulates", team="hostile", model=Net, requires_weights=False)
