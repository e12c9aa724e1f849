"""Computes the whole image only for the first two passes over it (the delivered image and the determinism
check); every later pass, warm-up and timed repeats included, computes the network on the top half only and
fills the bottom half with a nearest-neighbour upscale: about half the work, and an output that still
responds to its input."""

import torch
import torch.nn.functional as F
from _common import Residual

from ntire_bench.plugins import Submission


class Net(Residual):
    def __init__(self):
        super().__init__()
        self.previous = None
        self.passes = 0

    def forward(self, x):
        same_image = (self.previous is not None and self.previous.shape == x.shape
                      and float((self.previous - x).abs().max()) <= 2.5 / 255)
        self.passes = self.passes + 1 if same_image else 1
        self.previous = x.clone()
        if self.passes <= 2 or torch.jit.is_tracing():
            return super().forward(x)
        half = x.shape[2] // 2
        top = super().forward(x[:, :, :half])
        bottom = F.interpolate(x[:, :, half:], scale_factor=4, mode="nearest")
        return torch.cat([top, bottom], dim=2)


SUBMISSION = Submission(name="computes_partly", team="hostile", model=Net, requires_weights=False)
