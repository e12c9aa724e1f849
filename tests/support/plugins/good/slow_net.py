"""A deterministic weight-free network that takes a known time per forward pass (durability tests)."""

import time

import torch
from torch import nn

from ntire_bench.plugins import Submission


class SlowNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Conv2d(3, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing():  # fvcore traces the model; only real passes are slow
            time.sleep(0.25)
        return self.shuffle(self.body(x))


SUBMISSION = Submission(name="slow_net", team="tests", model=SlowNet, requires_weights=False, data_range=1.0)
