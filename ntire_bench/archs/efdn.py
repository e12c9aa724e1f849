"""EFDN: Edge-enhanced Feature Distillation Network (Wang, NTIRE 2022 ESR), NTIRE 2025 baseline.

Inference form with 48 channels: the edge-enhanced re-parameterisable convs are stored
as plain 3x3 ``rep_conv`` layers. Input in 0..1; the network clamps its output to
[0, 1]. Module names follow ``ntire2025_efdn_baseline.pth``.
"""

from __future__ import annotations

import torch
from torch import nn

from ntire_bench.archs.blocks import RFDNESA, pixelshuffle_upsampler


class Conv1x1Act(nn.Module):
    """A 1x1 conv followed by a channel-wise PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(channels, channels, 1)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv1x1(x))


class RepConvAct(nn.Module):
    """The deployed edge-enhanced conv: one 3x3 ``rep_conv`` followed by a channel-wise PReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.rep_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.rep_conv(x))


class EFDB(nn.Module):
    """One EFDN cell: three convs, a 1x1 distillation branch per stage, fuse, ESA, residual."""

    def __init__(self, channels: int = 48, esa_channels: int = 12) -> None:
        super().__init__()
        distilled = channels // 2
        self.conv1 = Conv1x1Act(channels)
        self.conv2 = RepConvAct(channels)
        self.conv3 = RepConvAct(channels)
        self.fuse = nn.Conv2d(distilled * 4, channels, 1)
        self.att = RFDNESA(channels, esa_channels)
        self.branch = nn.ModuleList(nn.Conv2d(channels, distilled, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.conv1(x)
        o2 = self.conv2(o1)
        o3 = self.conv3(o2)
        stages = (x, o1, o2, o3)
        distilled = torch.cat([branch(s) for branch, s in zip(self.branch, stages)], dim=1)
        return self.att(self.fuse(distilled)) + x


class EFDN(nn.Module):
    """EFDN x4 with four cells (NTIRE 2025 ESR baseline); input in 0..1, output clamped to [0, 1]."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 48,
        esa_channels: int = 12,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.cells = nn.ModuleList(EFDB(channels, esa_channels) for _ in range(4))
        self.local_fuse = nn.ModuleList(nn.Conv2d(channels * 2, channels, 1) for _ in range(3))
        self.tail = pixelshuffle_upsampler(channels, out_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o0 = self.head(x)
        c1 = self.cells[0](o0)
        c2 = self.cells[1](c1)
        f2 = self.local_fuse[0](torch.cat([c1, c2], dim=1))
        c3 = self.cells[2](f2)
        f3 = self.local_fuse[1](torch.cat([c2, c3], dim=1))
        c4 = self.cells[3](f3)
        # The official network fuses c2 (not c3) with c4 here; the checkpoint was trained so.
        f4 = self.local_fuse[2](torch.cat([c2, c4], dim=1))
        return self.tail(f4 + o0).clamp(0.0, 1.0)
