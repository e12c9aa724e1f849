"""The bicubic reference method: MATLAB-compatible x4 upscaling, no parameters."""

from __future__ import annotations

import torch
from torch import nn

from ntire_bench.data.imresize import imresize


class Bicubic(nn.Module):
    """Parameter-free x``scale`` MATLAB bicubic upscaler (cubic a = -0.5, symmetric borders).

    Works on any input range; the output is neither rounded nor clamped.
    """

    def __init__(self, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, scale=self.scale)
