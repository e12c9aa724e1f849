"""LGVAN: Local-Global Visual Attention Network (NTIRE 2023 ESR, team 18 "Dase-IDEALab").

The network the team released (charonf/LGVAN-NTIRE2023-ESR), 32 channels and nine blocks,
input and output in 0..1. Module names follow the team's checkpoint
``ntire2023_lgvan_team18.pth`` (weights under ``params_ema``), spellings included
(``atten``, ``MLP``, ``upsapling``).

- ``conv_first`` (3x3, 3 -> 32), nine blocks, ``conv_after_body`` (3x3, two groups) plus
  the ``conv_first`` output; ``upsapling``: twice a 1x1 conv to 128 channels and
  PixelShuffle(2); LeakyReLU(0.2); ``conv_last`` (3x3, 32 -> 3); plus the input, bilinearly
  upscaled x4.
- A block is an attention unit then a feed-forward unit, each normalised first by a
  LayerNorm over channels and added back through a learnt per-channel ``scale``.
- The attention's spatial gate sums four depthwise paths over a 1x1 projection: 5x5 then
  5x5 dilated by 3; 1x5 then 5x1; 1x3 then 3x1 (both strip pairs padded as released, see
  ``SpatialGate``); and the projection itself.

The LeakyReLU is a module and the LayerNorm is written out element-wise, as in the team's
code: the NTIRE 2023 FLOP counter counts ``nn.LeakyReLU`` calls, and fvcore would count a
``layer_norm`` operator but skips element-wise arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an NCHW tensor: biased variance, ``eps`` inside the root."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        variance = centred.pow(2).mean(dim=1, keepdim=True)
        normalised = centred / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * normalised + self.bias[:, None, None]


def depthwise_conv(
    channels: int,
    kernel: int | tuple[int, int],
    padding: int | tuple[int, int],
    dilation: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """A depthwise conv (one filter per channel)."""
    return nn.Conv2d(channels, channels, kernel, padding=padding, dilation=dilation, groups=channels, bias=bias)


class SpatialGate(nn.Module):
    """``x * conv1(wide + strip5 + p + strip3)`` with ``p = head(x)``; every path is depthwise.

    ``wide`` is a 5x5 conv then a 5x5 conv dilated by 3 (a 17x17 field). In each strip
    pair the released code pads the *other* axis: the 1xk conv pads k//2 rows (so the map
    grows k-1 rows taller and k-1 columns narrower), the kx1 conv pads k//2 columns and
    restores the size. Near the borders the pair therefore sees zero rows carrying the
    first conv's bias; the padding is kept exactly as released.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(channels, channels, 1)
        self.conv0 = depthwise_conv(channels, 5, padding=2)
        self.conv_spatial = depthwise_conv(channels, 5, padding=6, dilation=3)
        self.conv_v = depthwise_conv(channels, (1, 5), padding=(2, 0))
        self.conv_h = depthwise_conv(channels, (5, 1), padding=(0, 2))
        self.conv_v_2 = depthwise_conv(channels, (1, 3), padding=(1, 0))
        self.conv_h_2 = depthwise_conv(channels, (3, 1), padding=(0, 1))
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.head(x)
        wide = self.conv_spatial(self.conv0(projected))
        strip5 = self.conv_h(self.conv_v(projected))
        strip3 = self.conv_h_2(self.conv_v_2(projected))
        return x * self.conv1(wide + strip5 + projected + strip3)


class AttentionUnit(nn.Module):
    """``x + scale * proj_2(gate(gelu(proj_1(norm(x)))))``; the gate multiplies the post-GELU features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(channels)
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.proj_1 = nn.Conv2d(channels, channels, 1)
        self.spatial_gating_unit = SpatialGate(channels)
        self.proj_2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = F.gelu(self.proj_1(self.norm(x)))
        return self.proj_2(self.spatial_gating_unit(features)) * self.scale + x


class FeedForwardUnit(nn.Module):
    """``x + scale * fc2(gelu(h + dwconv(h)))`` with ``h = fc1(norm(x))``: 2x expansion, bias-free dwconv."""

    def __init__(self, channels: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = channels * expansion
        self.norm = ChannelLayerNorm(channels)
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = depthwise_conv(hidden, 3, padding=1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(self.norm(x))
        hidden = F.gelu(self.dwconv(hidden) + hidden)
        return self.fc2(hidden) * self.scale + x


class LGVANBlock(nn.Module):
    """One block: the attention unit (``atten``), then the feed-forward unit (``MLP``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.atten = AttentionUnit(channels)
        self.MLP = FeedForwardUnit(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.MLP(self.atten(x))


class LGVAN(nn.Module):
    """LGVAN x4 (NTIRE 2023 ESR team 18): 32 channels, nine blocks; input and output in 0..1."""

    def __init__(self, channels: int = 32, num_blocks: int = 9, in_channels: int = 3, out_channels: int = 3) -> None:
        super().__init__()
        self.upscale = 4
        self.conv_first = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.layers = nn.ModuleList(LGVANBlock(channels) for _ in range(num_blocks))
        self.conv_after_body = nn.Conv2d(channels, channels, 3, padding=1, groups=2)
        self.upsapling = nn.Sequential(
            nn.Conv2d(channels, channels * 4, 1),
            nn.PixelShuffle(2),
            nn.Conv2d(channels, channels * 4, 1),
            nn.PixelShuffle(2),
        )
        self.act = nn.LeakyReLU(0.2)
        self.conv_last = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.conv_first(x)
        deep = shallow
        for block in self.layers:
            deep = block(deep)
        features = self.conv_after_body(deep) + shallow
        detail = self.conv_last(self.act(self.upsapling(features)))
        return detail + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
