"""GLA-Net: global-local awareness network (Pan, Hsu, Wei, Lin, ICIP 2023), small configuration.

Written from the paper's description; no trained weights ship with the harness.

- A GLA layer runs two modules side by side on the same features and adds them: a
  Swin Transformer layer (window self-attention, shifted on every other layer, then an
  MLP; the low-frequency/global path) and an Inception module (parallel 1x1, 3x3,
  double-3x3 and pool branches; the high-frequency/local path).
- A GLA block is several GLA layers followed by a 3x3 conv, with a residual.
- Blocks are densely connected: block k sees a 1x1 fusion of the shallow features and
  every earlier block's output, and a last 1x1 fusion gathers all block outputs.
- 3x3 conv head, 3x3 conv after the body with a global residual, and a 3x3 conv to
  3*16 channels + PixelShuffle(4). Input and output in 0..1, mean-shifted inside.

The default is a small configuration (32 channels, 3 blocks x 2 layers, window 8) that
runs quickly on a CPU. Window attention needs H and W to be multiples of the window, and
the model asserts it: the harness pads (``Submission.pad_to_multiple``) and crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.archs.blocks import pixelshuffle_upsampler

RGB_MEAN = (0.4488, 0.4371, 0.4040)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * H/ws * W/ws, ws*ws, C)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`."""
    c = windows.shape[-1]
    x = windows.reshape(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """Additive mask (nW, ws*ws, ws*ws) that stops tokens from attending across rolled edges."""
    region = torch.zeros(1, h, w, 1, device=device)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for wsl in cuts:
            region[:, hs, wsl, :] = label
            label += 1
    ids = window_partition(region, ws).squeeze(-1)
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return diff.ne(0).float() * -100.0


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ws x ws windows with a learned relative position bias."""

    def __init__(self, dim: int, window_size: int, heads: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        span = 2 * window_size - 1
        self.relative_position_bias = nn.Parameter(torch.zeros(span * span, heads))
        nn.init.trunc_normal_(self.relative_position_bias, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
        coords = coords.flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
        self.register_buffer("relative_index", rel[..., 0] * span + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.matmul(q * self.scale, k.transpose(-2, -1))
        bias = self.relative_position_bias[self.relative_index.reshape(-1)].reshape(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape(bw // nw, nw, self.heads, n, n) + mask[None, :, None]
            attn = attn.reshape(bw, self.heads, n, n)
        out = torch.matmul(attn.softmax(dim=-1), v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(out)


class SwinLayer(nn.Module):
    """Pre-norm (shifted) window attention and MLP, on an NCHW tensor; includes its residuals."""

    def __init__(self, dim: int, window_size: int, heads: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws, shift = self.window_size, self.shift
        tokens = x.permute(0, 2, 3, 1)
        y = self.norm1(tokens)
        mask = None
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(h, w, ws, shift, x.device)
        y = window_reverse(self.attn(window_partition(y, ws), mask), ws, b, h, w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        tokens = tokens + y
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.permute(0, 3, 1, 2)


class InceptionModule(nn.Module):
    """Four parallel local branches, each to dim/4 channels, concatenated back to dim."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        q = dim // 4
        self.branch1 = nn.Conv2d(dim, q, 1)
        self.branch3 = nn.Sequential(nn.Conv2d(dim, q, 1), nn.Conv2d(q, q, 3, padding=1))
        self.branch5 = nn.Sequential(
            nn.Conv2d(dim, q, 1), nn.Conv2d(q, q, 3, padding=1), nn.Conv2d(q, q, 3, padding=1)
        )
        self.branch_pool = nn.Conv2d(dim, dim - 3 * q, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        out = torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(pooled)], dim=1)
        return F.gelu(out)


class GLALayer(nn.Module):
    """Global (Swin) and local (Inception) paths on the same input, summed."""

    def __init__(self, dim: int, window_size: int, heads: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.global_path = SwinLayer(dim, window_size, heads, shift, mlp_ratio)
        self.local_path = InceptionModule(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_path(x) + self.local_path(x)


class GLABlock(nn.Module):
    """GLA layers (alternating plain and shifted windows), a 3x3 conv, and a residual."""

    def __init__(self, dim: int, depth: int, window_size: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(
                GLALayer(dim, window_size, heads, 0 if i % 2 == 0 else window_size // 2, mlp_ratio)
                for i in range(depth)
            )
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.layers(x)) + x


class GLANet(nn.Module):
    """GLA-Net x4 (small configuration by default); H and W must be multiples of ``window_size``."""

    def __init__(
        self,
        dim: int = 32,
        num_blocks: int = 3,
        depth: int = 2,
        window_size: int = 8,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        upscale: int = 4,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Conv2d(in_channels, dim, 3, padding=1)
        self.blocks = nn.ModuleList(GLABlock(dim, depth, window_size, heads, mlp_ratio) for _ in range(num_blocks))
        # Dense connections: block k (k >= 1) reads a fusion of the head and blocks 0..k-1.
        self.dense_fuse = nn.ModuleList(nn.Conv2d(dim * (k + 1), dim, 1) for k in range(1, num_blocks))
        self.final_fuse = nn.Conv2d(dim * num_blocks, dim, 1)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        self.upsample = pixelshuffle_upsampler(dim, in_channels, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ws = self.window_size
        assert h % ws == 0 and w % ws == 0, f"GLA-Net needs H, W multiples of {ws}, got {h}x{w}; pad the input"
        shallow = self.head(x - self.mean)
        features = [shallow]
        for k, block in enumerate(self.blocks):
            inp = shallow if k == 0 else self.dense_fuse[k - 1](torch.cat(features, dim=1))
            features.append(block(inp))
        deep = self.final_fuse(torch.cat(features[1:], dim=1))
        return self.upsample(self.conv_after_body(deep) + shallow) + self.mean


def glanet_small(window_size: int = 8) -> GLANet:
    """The small GLA-Net used by the harness: 32 channels, 3 blocks x 2 layers, 4 heads."""
    return GLANet(dim=32, num_blocks=3, depth=2, window_size=window_size, heads=4)
