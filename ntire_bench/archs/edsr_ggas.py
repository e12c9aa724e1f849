"""EDSR-baseline x4, and EDSR-baseline with GGAS and CWSS.

EDSR-baseline (Lim et al., CVPRW 2017): 16 residual blocks of 64 channels (conv-ReLU-
conv, no batch norm), a body conv with a global residual, an x4 upsampler of two
(3x3 conv to 256 channels + PixelShuffle(2)) stages, a 3x3 conv to RGB, and a fixed
RGB mean shift around the whole network. Input and output are in 0..255. Module names
follow the layout of the public EDSR code (``sub_mean``, ``head.0``,
``body.<i>.body.{0,2}``, ``body.16``, ``tail.0.{0,2}``, ``tail.1``, ``add_mean``).

"Two strategies toward lightweight image super-resolution" (Du, Liu, Tang, Wu, ICASSP
2022) adds, with negligible overhead:

- GGAS, the global-guided attention strategy: one attention map is computed from the
  global (shallow, head) features -- depthwise 7x7 conv, BatchNorm, ReLU, pointwise conv,
  sigmoid -- and gates the residual branch of every block, so that every block is
  guided by the same global, high-frequency-aware map.
- CWSS, the channel-wise scaling strategy: each residual branch is multiplied by a
  learnable per-channel scale before it is added back, which keeps residuals small.

The paper gives the structure of the GGAS unit but not its kernel size; 7x7 is the size
at which EDSR-baseline + GGAS has the reported 1525 K parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Module):
    """Subtract (sign=-1) or add (sign=+1) the DIV2K RGB mean as a fixed 1x1 conv.

    Weight and bias are persistent buffers, not parameters: they are part of the
    state_dict (as in the EDSR checkpoints) but are not trainable and not counted.
    """

    def __init__(self, rgb_range: float = 255.0, sign: int = -1) -> None:
        super().__init__()
        self.register_buffer("weight", torch.eye(3).view(3, 3, 1, 1))
        self.register_buffer("bias", sign * rgb_range * torch.tensor(DIV2K_RGB_MEAN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 residual branch (``body.0``/``body.2``), optionally gated and scaled."""

    def __init__(self, channels: int, channel_scale: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        # CWSS: one learnable scale per channel of the residual.
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1)) if channel_scale else None

    def forward(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        res = self.body(x)
        if attention is not None:
            res = res * attention
        if self.scale is not None:
            res = res * self.scale
        return x + res


class GlobalGuidedAttention(nn.Module):
    """GGAS unit: depthwise conv, BatchNorm, ReLU, pointwise conv, sigmoid."""

    def __init__(self, channels: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.bn = nn.BatchNorm2d(channels)
        self.pw = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.pw(F.relu(self.bn(self.dw(x)))))


class EDSR(nn.Module):
    """EDSR x4 (baseline defaults); ``ggas``/``cwss`` switch on the two strategies."""

    def __init__(
        self,
        num_blocks: int = 16,
        channels: int = 64,
        upscale: int = 4,
        rgb_range: float = 255.0,
        ggas: bool = False,
        cwss: bool = False,
        ggas_kernel: int = 7,
    ) -> None:
        super().__init__()
        if upscale not in (2, 4):
            raise ValueError(f"upscale must be 2 or 4, got {upscale}")
        self.sub_mean = MeanShift(rgb_range, sign=-1)
        self.add_mean = MeanShift(rgb_range, sign=+1)
        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1))
        blocks: list[nn.Module] = [ResBlock(channels, channel_scale=cwss) for _ in range(num_blocks)]
        blocks.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.body = nn.Sequential(*blocks)
        self.ggas = GlobalGuidedAttention(channels, ggas_kernel) if ggas else None
        stages: list[nn.Module] = []
        for _ in range(upscale // 2):
            stages += [nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2)]
        self.tail = nn.Sequential(nn.Sequential(*stages), nn.Conv2d(channels, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.head(self.sub_mean(x))
        attention = self.ggas(shallow) if self.ggas is not None else None
        feat = shallow
        for block in self.body[:-1]:
            feat = block(feat, attention)
        feat = self.body[-1](feat) + shallow
        return self.add_mean(self.tail(feat))


def edsr_baseline() -> EDSR:
    """Plain EDSR-baseline x4 (16 blocks, 64 channels)."""
    return EDSR()


def edsr_baseline_ggas_cwss() -> EDSR:
    """EDSR-baseline x4 with the global-guided attention and channel-wise scaling strategies."""
    return EDSR(ggas=True, cwss=True)
