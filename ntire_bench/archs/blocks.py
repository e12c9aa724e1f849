"""Building blocks shared by several architectures.

Only pieces used by more than one network live here: the Enhanced Spatial Attention
(ESA) of RFDN and its slimmer RLFN form, and the pixel-shuffle upsampler.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ESA(nn.Module):
    """Enhanced Spatial Attention in its RLFN form (one conv at low resolution).

    ``conv1`` squeezes to ``esa_channels``; a stride-2 unpadded conv and a 7/3 max-pool
    give a coarse map, refined at low resolution, bilinearly resized back, added to
    ``conv_f`` of the squeezed features, expanded by ``conv4`` and used as a sigmoid gate.
    """

    def __init__(self, channels: int, esa_channels: int) -> None:
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(channels, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, channels, 1)

    def low_resolution(self, pooled: torch.Tensor) -> torch.Tensor:
        """Refine the max-pooled map (RLFN: a single 3x3 conv)."""
        return self.conv3(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        low = self.low_resolution(F.max_pool2d(c1, kernel_size=7, stride=3))
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        gate = torch.sigmoid(self.conv4(up + self.conv_f(c1_)))
        return x * gate


class RFDNESA(ESA):
    """The original RFDN/EFDN ESA: ``conv_max``+ReLU, ``conv3``+ReLU, ``conv3_`` at low resolution."""

    def __init__(self, channels: int, esa_channels: int) -> None:
        super().__init__(channels, esa_channels)
        f = esa_channels
        self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, 3, padding=1)

    def low_resolution(self, pooled: torch.Tensor) -> torch.Tensor:
        v = F.relu(self.conv_max(pooled))
        v = F.relu(self.conv3(v))
        return self.conv3_(v)


def pixelshuffle_upsampler(in_channels: int, out_channels: int = 3, scale: int = 4) -> nn.Sequential:
    """A 3x3 conv to ``out_channels * scale**2`` followed by PixelShuffle(scale)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels * scale * scale, 3, padding=1),
        nn.PixelShuffle(scale),
    )
