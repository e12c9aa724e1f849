"""Adds fresh noise of up to 3 grey levels to every output pixel, as a model that samples in eval mode does:
two passes over the same image differ. The organisers' code ranks such a model; the harness measures the
spread, flags it, and verifies its timing and complexity to that tolerance."""

import torch
from _common import Honest

from ntire_bench.plugins import Submission


class Net(Honest):
    def forward(self, x):
        out = super().forward(x)
        return out + torch.rand_like(out) * (3 / 255)


SUBMISSION = Submission(name="nondeterministic", team="hostile", model=Net, requires_weights=False, data_range=1.0)
