"""SPAN: Swift Parameter-free Attention Network (Wan et al., NTIRE 2024 ESR winner).

Inference form with 28 channels: every training-time multi-branch conv is stored in the
checkpoint as its re-parameterised 3x3 ``eval_conv``. Input and output are in 0..1;
internally the input is mean-shifted and scaled to 0..255 and nothing is added back.
Module names follow ``ntire2024_span_ch28.pth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.archs.blocks import pixelshuffle_upsampler

RGB_MEAN = (0.4488, 0.4371, 0.4040)


class RepConv3x3(nn.Module):
    """The deployed form of SPAN's re-parameterisable conv: one 3x3 conv named ``eval_conv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.eval_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eval_conv(x)


class SPAB(nn.Module):
    """Swift parameter-free attention block; returns ``(out, silu(o1))``.

    The second value is the first conv's output *after* SiLU. ARCHITECTURES.md calls it
    pre-activation, but the official code applies an in-place SiLU that overwrites the
    tensor it later returns; only the activated form reproduces the reference PSNR.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = RepConv3x3(channels, channels)
        self.c2_r = RepConv3x3(channels, channels)
        self.c3_r = RepConv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o1 = F.silu(self.c1_r(x))
        o2 = self.c2_r(o1)
        o3 = self.c3_r(F.silu(o2))
        # Parameter-free attention: a symmetric (zero-centred) sigmoid of the features.
        att = torch.sigmoid(o3) - 0.5
        return (o3 + x) * att, o1


class SPAN(nn.Module):
    """SPAN x4 with six SPABs (28 channels in the NTIRE 2024 slim checkpoint); input in 0..1."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        feature_channels: int = 28,
        num_blocks: int = 6,
        upscale: int = 4,
        img_range: float = 255.0,
    ) -> None:
        super().__init__()
        self.img_range = img_range
        self.num_blocks = num_blocks
        # Not persistent: the checkpoint carries no mean tensor.
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_1 = RepConv3x3(in_channels, feature_channels)
        for i in range(1, num_blocks + 1):
            self.add_module(f"block_{i}", SPAB(feature_channels))
        self.conv_cat = nn.Conv2d(feature_channels * 4, feature_channels, 1)
        self.conv_2 = RepConv3x3(feature_channels, feature_channels)
        self.upsampler = pixelshuffle_upsampler(feature_channels, out_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) * self.img_range
        shallow = self.conv_1(x)
        out = shallow
        first_out = shallow
        last_o1 = shallow
        for i in range(1, self.num_blocks + 1):
            out, last_o1 = getattr(self, f"block_{i}")(out)
            if i == 1:
                first_out = out
        deep = self.conv_2(out)
        fused = self.conv_cat(torch.cat([shallow, deep, first_out, last_o1], dim=1))
        return self.upsampler(fused)
