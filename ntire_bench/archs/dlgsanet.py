"""DLGSANet: dynamic local and global self-attention network (Li, Pan, Tang, Dong, ICCV 2023).

Written from the paper's description; no trained x4 weights ship with the harness.

- Shallow features: a bias-free 3x3 conv on the mean-shifted input (0..1).
- Deep features: ``groups`` residual hybrid dynamic-Transformer groups (RHDTG), each
  ``blocks`` hybrid dynamic-Transformer blocks (HDTB) then a 3x3 conv, with a group
  residual; a 3x3 conv after the groups and a global residual.
- An HDTB is two pre-norm Transformer layers: MHDLSA (multi-head dynamic local
  self-attention, a per-pixel depthwise kernel of size 7 predicted from the features,
  one kernel per head) and SparseGSA (channel "transposed" self-attention whose
  similarity matrix goes through ReLU instead of softmax, so it is sparse). Each is
  followed by a gated depthwise feed-forward network.
- Reconstruction: a 3x3 conv to 3*16 channels and PixelShuffle(4).

Configurations: tiny = 3 groups x 3 blocks, light = 4 groups x 3 blocks, 48 channels, 6 heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.archs.blocks import pixelshuffle_upsampler

RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel dimension of an NCHW tensor (weight and bias per channel)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GatedDConvFFN(nn.Module):
    """Feed-forward: 1x1 to 2*hidden, 3x3 depthwise, GELU(one half) * other half, 1x1 back."""

    def __init__(self, dim: int, expansion: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class DynamicDepthwiseConv(nn.Module):
    """Depthwise conv whose k x k kernel is predicted per pixel; one kernel per head.

    The kernel generator is a 1x1 squeeze (C -> C/4), a k x k depthwise conv and a 1x1
    conv to ``heads * k * k`` taps. Channels of a head share that head's kernel.
    """

    def __init__(self, dim: int, kernel_size: int = 7, heads: int = 6, reduction: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.kernel_size = kernel_size
        self.heads = heads
        squeezed = dim // reduction
        self.squeeze = nn.Conv2d(dim, squeezed, 1)
        self.context = nn.Conv2d(squeezed, squeezed, kernel_size, padding=kernel_size // 2, groups=squeezed)
        self.to_kernel = nn.Conv2d(squeezed, heads * kernel_size * kernel_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Plain NCHW here, whatever layout arrives: the kernel generator and the per-tap
        # slices below are fastest on CPU in it (the model itself runs channels-last).
        x = x.contiguous()
        b, c, h, w = x.shape
        k, pad = self.kernel_size, self.kernel_size // 2
        kernels = self.to_kernel(self.context(self.squeeze(x)))
        if torch.jit.is_tracing():
            return self._aggregate_unfold(x, kernels)
        # Shift and accumulate: one multiply-add per tap over the zero-padded input, so the
        # k*k shifted copies that ``unfold`` would materialise are never built (about 30x
        # faster on CPU at 128x128). It performs the same c*k*k*h*w multiply-adds that the
        # traced einsum form counts; see ``_aggregate_unfold``.
        padded = F.pad(x, (pad, pad, pad, pad)).reshape(b, self.heads, c // self.heads, h + 2 * pad, w + 2 * pad)
        kernels = kernels.reshape(b, self.heads, 1, k * k, h, w)
        out = padded[..., :h, :w] * kernels[:, :, :, 0]
        for tap in range(1, k * k):
            i, j = divmod(tap, k)
            out.addcmul_(padded[..., i : i + h, j : j + w], kernels[:, :, :, tap])
        return out.reshape(b, c, h, w)

    def _aggregate_unfold(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """The aggregation as unfold + einsum, the form fvcore sees when it traces the model.

        fvcore counts an einsum's multiply-adds (here ``c * k*k * h*w``) but skips the
        element-wise ``mul``/``addcmul_`` of the eager loop, which would count 0. Keep this a
        single einsum of these sizes: fvcore rounds a generic einsum's count to four
        significant figures, so splitting it (per tap, per tile) changes the total. Same
        result as the eager loop to float rounding.
        """
        b, c, h, w = x.shape
        k2 = self.kernel_size * self.kernel_size
        kernels = kernels.reshape(b, self.heads, k2, h * w)
        patches = F.unfold(x, self.kernel_size, padding=self.kernel_size // 2)
        patches = patches.reshape(b, self.heads, c // self.heads, k2, h * w)
        out = torch.einsum("bgckn,bgkn->bgcn", patches, kernels)
        return out.reshape(b, c, h, w)


class MHDLSA(nn.Module):
    """Multi-head dynamic local self-attention: 1x1 conv, dynamic depthwise conv, 1x1 conv."""

    def __init__(self, dim: int, kernel_size: int = 7, heads: int = 6) -> None:
        super().__init__()
        self.proj_in = nn.Conv2d(dim, dim, 1, bias=False)
        self.dynamic = DynamicDepthwiseConv(dim, kernel_size, heads)
        self.proj_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.dynamic(self.proj_in(x)))


class SparseGSA(nn.Module):
    """Sparse global self-attention across channels: ReLU(q k^T * temperature) v per head."""

    def __init__(self, dim: int, heads: int = 6) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = F.relu(torch.matmul(q, k.transpose(-2, -1)) * self.temperature)
        out = torch.matmul(attn, v).reshape(b, c, h, w)
        return self.project_out(out)


class PreNormLayer(nn.Module):
    """x + mixer(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, dim: int, mixer: nn.Module, ffn_expansion: float) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.mixer = mixer
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GatedDConvFFN(dim, ffn_expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class HDTB(nn.Module):
    """Hybrid dynamic-Transformer block: an MHDLSA layer followed by a SparseGSA layer."""

    def __init__(self, dim: int, heads: int, kernel_size: int, ffn_expansion: float) -> None:
        super().__init__()
        self.local = PreNormLayer(dim, MHDLSA(dim, kernel_size, heads), ffn_expansion)
        self.global_ = PreNormLayer(dim, SparseGSA(dim, heads), ffn_expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_(self.local(x))


class RHDTG(nn.Module):
    """Residual hybrid dynamic-Transformer group: HDTBs, a 3x3 conv, and a residual."""

    def __init__(self, dim: int, blocks: int, heads: int, kernel_size: int, ffn_expansion: float) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(HDTB(dim, heads, kernel_size, ffn_expansion) for _ in range(blocks)))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.blocks(x)) + x


class DLGSANet(nn.Module):
    """DLGSANet x4; input and output in 0..1. Defaults are the tiny configuration."""

    def __init__(
        self,
        dim: int = 48,
        groups: int = 3,
        blocks: int = 3,
        heads: int = 6,
        kernel_size: int = 7,
        ffn_expansion: float = 2.0,
        upscale: int = 4,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.embed = nn.Conv2d(in_channels, dim, 3, padding=1, bias=False)
        self.groups = nn.Sequential(
            *(RHDTG(dim, blocks, heads, kernel_size, ffn_expansion) for _ in range(groups))
        )
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        self.upsample = pixelshuffle_upsampler(dim, in_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last features: oneDNN's 1x1 and depthwise convs and the channel LayerNorms
        # are several times faster on CPU in it than in NCHW. The output is returned as NCHW.
        x = (x - self.mean).contiguous(memory_format=torch.channels_last)
        shallow = self.embed(x)
        deep = self.conv_after_body(self.groups(shallow)) + shallow
        return (self.upsample(deep) + self.mean).contiguous()


def dlgsanet_tiny() -> DLGSANet:
    """DLGSANet-tiny x4: 48 channels, 3 groups x 3 HDTBs."""
    return DLGSANet(groups=3, blocks=3)


def dlgsanet_light() -> DLGSANet:
    """DLGSANet-light x4: 48 channels, 4 groups x 3 HDTBs."""
    return DLGSANet(groups=4, blocks=3)
