"""LGVAN: Local-Global Visual Attention Network (NTIRE 2023 ESR factsheet).

Written from the factsheet's description; no trained weights ship with the harness.

- A 3x3 conv head (3 -> 32), nine local-global attention blocks, a 3x3 conv tail with
  a global residual from the head, and a 3x3 conv to 3*16 channels + PixelShuffle(4).
- Block: ``x + LGCA(x)`` then ``x + LEFN(x)`` (no normalisation layers).
- LGCA (local-global convolutional attention): a 1x1 conv, then the sum of four
  depthwise branches -- 5x5 followed by 5x5 dilated by 3 (the "global" branch, a 17x17
  receptive field), 1x3 followed by 3x1, 1x5 followed by 5x1, and identity -- then a
  1x1 conv; the result multiplies the block input.
- LEFN (local enhanced feed-forward): 1x1 expansion, 3x3 depthwise conv with its own
  residual, GELU, 1x1 contraction.

The factsheet gives neither the LEFN expansion ratio nor whether the blocks normalise;
2.5 (80 hidden channels) without normalisation is the choice that reproduces the
reported 0.1182 M parameters (see docs/architectures.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.archs.blocks import pixelshuffle_upsampler


def _dw(channels: int, kernel: tuple[int, int], dilation: int = 1) -> nn.Conv2d:
    pad = (dilation * (kernel[0] - 1) // 2, dilation * (kernel[1] - 1) // 2)
    return nn.Conv2d(channels, channels, kernel, padding=pad, dilation=dilation, groups=channels)


class LGCA(nn.Module):
    """Local-global convolutional attention: multi-branch depthwise context, used as a gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj_in = nn.Conv2d(channels, channels, 1)
        self.global_branch = nn.Sequential(_dw(channels, (5, 5)), _dw(channels, (5, 5), dilation=3))
        self.strip3 = nn.Sequential(_dw(channels, (1, 3)), _dw(channels, (3, 1)))
        self.strip5 = nn.Sequential(_dw(channels, (1, 5)), _dw(channels, (5, 1)))
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.proj_in(x)
        context = self.global_branch(u) + self.strip3(u) + self.strip5(u) + u
        return x * self.proj_out(context)


class LEFN(nn.Module):
    """Local enhanced feed-forward network: expand, depthwise 3x3 (+ itself), GELU, contract."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.contract = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x)
        h = F.gelu(self.dwconv(h) + h)
        return self.contract(h)


class LGAB(nn.Module):
    """Local-global attention block: residual LGCA, then residual LEFN."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.attn = LGCA(channels)
        self.ffn = LEFN(channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class LGVAN(nn.Module):
    """LGVAN x4 (9 blocks, 32 channels); input and output in 0..1."""

    def __init__(
        self,
        channels: int = 32,
        num_blocks: int = 9,
        ffn_hidden: int = 80,
        upscale: int = 4,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.body = nn.Sequential(*(LGAB(channels, ffn_hidden) for _ in range(num_blocks)))
        self.tail = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsampler = pixelshuffle_upsampler(channels, in_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.head(x)
        return self.upsampler(self.tail(self.body(shallow)) + shallow)
