"""A small, deterministic, weight-free network: the well-behaved neighbour in isolation tests."""

import torch
from torch import nn

from ntire_bench.plugins import Submission


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Conv2d(3, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=4, mode="nearest")
        return up + 0.01 * self.shuffle(self.body(x))


SUBMISSION = Submission(name="tiny_net", team="tests", model=TinyNet, requires_weights=False, data_range=1.0)
