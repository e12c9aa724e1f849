"""Shared scaffolding for the hostile plugins: a tiny model whose forward misbehaves."""

import torch
from torch import nn

from ntire_bench.plugins import Submission


class Base(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


def declare(name: str, model: type) -> Submission:
    return Submission(name=name, team="hostile", model=model, requires_weights=False)
