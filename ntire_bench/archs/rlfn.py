"""RLFN: Residual Local Feature Network (Kong et al., NTIRE 2022 ESR winner).

This is the pruned form used as the NTIRE 2024 ESR baseline (46 features, 48 mid
channels, ESA with 16 channels). It takes and returns images in 0..255. Module names
follow the official checkpoint ``ntire2024_rlfn_baseline.pth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.archs.blocks import ESA, pixelshuffle_upsampler


class RLFB(nn.Module):
    """Residual local feature block: three 3x3 convs with LeakyReLU(0.05), a skip, 1x1 conv, ESA."""

    def __init__(self, channels: int = 46, mid_channels: int = 48, esa_channels: int = 16) -> None:
        super().__init__()
        self.c1_r = nn.Conv2d(channels, mid_channels, 3, padding=1)
        self.c2_r = nn.Conv2d(mid_channels, mid_channels, 3, padding=1)
        self.c3_r = nn.Conv2d(mid_channels, channels, 3, padding=1)
        self.c5 = nn.Conv2d(channels, channels, 1)
        self.esa = ESA(channels, esa_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.c1_r(x), 0.05)
        out = F.leaky_relu(self.c2_r(out), 0.05)
        out = F.leaky_relu(self.c3_r(out), 0.05)
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """RLFN x4 with four RLFBs (NTIRE 2024 ESR baseline); input and output in 0..255."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        feature_channels: int = 46,
        mid_channels: int = 48,
        esa_channels: int = 16,
        num_blocks: int = 4,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(in_channels, feature_channels, 3, padding=1)
        self.num_blocks = num_blocks
        for i in range(1, num_blocks + 1):
            self.add_module(f"block_{i}", RLFB(feature_channels, mid_channels, esa_channels))
        self.conv_2 = nn.Conv2d(feature_channels, feature_channels, 3, padding=1)
        self.upsampler = pixelshuffle_upsampler(feature_channels, out_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.conv_1(x)
        out = shallow
        for i in range(1, self.num_blocks + 1):
            out = getattr(self, f"block_{i}")(out)
        return self.upsampler(self.conv_2(out) + shallow)
