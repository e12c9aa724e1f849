"""RFDN: Residual Feature Distillation Network (Liu et al., AIM 2020 ESR winner), NTIRE 2023 baseline.

50 feature channels, four RFDBs, an ESA with 12 channels; input and output in 0..255.
Module names follow the official checkpoint ``ntire2023_rfdn_baseline.pth`` (a plain
state dict).

The activations are modules (``nn.LeakyReLU(0.05)``, ``nn.ReLU``), as in the official
network: the NTIRE 2023 FLOP counter counts every call of such a module, so functional
calls would lower its figure at 256x256 by 68,974,176 (LeakyReLU 65,536,000 in the blocks
and 3,276,800 after the fusion conv; ReLU 161,376 in the ESAs).
"""

from __future__ import annotations

import torch
from torch import nn

from ntire_bench.archs.blocks import RFDNESA, pixelshuffle_upsampler


class ReLUModuleESA(RFDNESA):
    """RFDN's ESA, its two low-resolution ReLUs being one ``nn.ReLU`` module called twice."""

    def __init__(self, channels: int, esa_channels: int) -> None:
        super().__init__(channels, esa_channels)
        self.relu = nn.ReLU()

    def low_resolution(self, pooled: torch.Tensor) -> torch.Tensor:
        refined = self.relu(self.conv_max(pooled))
        refined = self.relu(self.conv3(refined))
        return self.conv3_(refined)


class RFDB(nn.Module):
    """Residual feature distillation block.

    Three stages each split off a 1x1 "distilled" map (25 channels, LeakyReLU) and refine
    the rest with a 3x3 conv plus a shallow residual (LeakyReLU); a 3x3 conv gives the
    fourth distilled map. The four are concatenated, fused by the 1x1 ``c5`` and passed
    through the ESA. There is no block-level residual. One LeakyReLU module serves all
    seven activations.
    """

    def __init__(self, channels: int = 50, esa_channels: int = 12) -> None:
        super().__init__()
        distilled = channels // 2
        self.c1_d = nn.Conv2d(channels, distilled, 1)
        self.c1_r = nn.Conv2d(channels, channels, 3, padding=1)
        self.c2_d = nn.Conv2d(channels, distilled, 1)
        self.c2_r = nn.Conv2d(channels, channels, 3, padding=1)
        self.c3_d = nn.Conv2d(channels, distilled, 1)
        self.c3_r = nn.Conv2d(channels, channels, 3, padding=1)
        self.c4 = nn.Conv2d(channels, distilled, 3, padding=1)
        self.act = nn.LeakyReLU(0.05)
        self.c5 = nn.Conv2d(distilled * 4, channels, 1)
        self.esa = ReLUModuleESA(channels, esa_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        refined = x
        for distil, refine in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(distil(refined)))
            refined = self.act(refine(refined) + refined)
        distilled.append(self.act(self.c4(refined)))
        return self.esa(self.c5(torch.cat(distilled, dim=1)))


class RFDN(nn.Module):
    """RFDN x4 (NTIRE 2023 ESR baseline); input and output in 0..255.

    ``fea_conv``, four RFDBs whose outputs are concatenated and fused by ``c`` (a 1x1 conv
    and LeakyReLU(0.05)), ``LR_conv`` (3x3) plus the ``fea_conv`` output, then a 3x3 conv to
    48 channels and PixelShuffle(4).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 50,
        num_blocks: int = 4,
        esa_channels: int = 12,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        self.num_blocks = num_blocks
        self.fea_conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        for i in range(1, num_blocks + 1):
            self.add_module(f"B{i}", RFDB(channels, esa_channels))
        self.c = nn.Sequential(nn.Conv2d(channels * num_blocks, channels, 1), nn.LeakyReLU(0.05))
        self.LR_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsampler = pixelshuffle_upsampler(channels, out_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.fea_conv(x)
        block_outputs = []
        out = shallow
        for i in range(1, self.num_blocks + 1):
            out = getattr(self, f"B{i}")(out)
            block_outputs.append(out)
        fused = self.c(torch.cat(block_outputs, dim=1))
        return self.upsampler(self.LR_conv(fused) + shallow)
