"""Keeps its convolution weights as buffers and calls the functional convolution, so that the official
parameter count (``parameters()``) and the official activation count (Conv2d layers) see none of them."""

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.plugins import Submission


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("weight", torch.randn(48, 3, 3, 3) * 0.1)
        self.register_buffer("bias", torch.zeros(48))
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x):
        up = F.interpolate(x, scale_factor=4, mode="nearest")
        return up + 0.01 * self.shuffle(F.conv2d(x, self.weight, self.bias, padding=1))


SUBMISSION = Submission(name="weights_as_buffers", team="hostile", model=Net, requires_weights=False)
