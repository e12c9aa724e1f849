"""MATLAB-compatible ``imresize(..., 'bicubic')`` for torch tensors on any device.

The NTIRE LR images and the bicubic reference figures come from MATLAB's imresize, so
this reproduces its exact arithmetic: the cubic kernel with a = -0.5, MATLAB's mapping
of output to input coordinates, a kernel widened by 1/scale when downscaling
(antialiasing), and one pass per dimension, the dimension with the smaller scale first.

Border handling differs between MATLAB releases: current releases mirror out-of-range
indices (``padding="symmetric"``, the default here); older ones clamp them
(``padding="replicate"``). The published x4 LR files of Set5, Set14 and B100 were made
with the older rule: ``downscale_uint8`` with replicate padding reproduces all 119 of
them bit for bit, so that is its default.

The per-dimension weight tables are computed once in float64 numpy and cached; the
resizing itself is torch matrix products (or per-tap gathers for long inputs).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

_KERNEL_WIDTH = 4.0  # support of the cubic kernel


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


PADDINGS = ("symmetric", "replicate")


@lru_cache(maxsize=256)
def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool, padding: str = "symmetric"
) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: 0-based input indices (out_len, P) and float64 weights (out_len, P)."""
    if scale < 1 and antialias:
        width = _KERNEL_WIDTH / scale
        kernel = lambda d: scale * _cubic(scale * d)  # noqa: E731
    else:
        width = _KERNEL_WIDTH
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coordinate of each output sample
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    idx = idx.astype(np.int64) - 1
    if padding == "replicate":
        idx = np.clip(idx, 0, in_len - 1)
    else:  # symmetric: the sequence 1..n, n..1 repeated
        mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
        idx = mirror[np.mod(idx, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return np.ascontiguousarray(idx[:, keep]), np.ascontiguousarray(weights[:, keep])


# A pass is a dense (out x in) matrix product when the input is short enough: BLAS does the
# wasted multiplications by zero faster than a gather does the useful ones (measured ~5x
# on 120x80 -> 480x320). Long inputs (large downscales) use one gather per kernel tap.
_DENSE_MAX_RATIO = 64


@lru_cache(maxsize=256)
def _dense_matrix(in_len: int, out_len: int, scale: float, antialias: bool, padding: str) -> np.ndarray:
    idx, weights = _contributions(in_len, out_len, scale, antialias, padding)
    m = np.zeros((out_len, in_len))
    np.add.at(m, (np.repeat(np.arange(out_len), idx.shape[1]), idx.ravel()), weights.ravel())
    return m


def _resize_dim(
    x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool, padding: str
) -> torch.Tensor:
    """Resize a (N, C, H, W) tensor along ``dim`` (2 or 3) with MATLAB's weights."""
    in_len = x.shape[dim]
    idx_np, w_np = _contributions(in_len, out_len, float(scale), antialias, padding)
    taps = idx_np.shape[1]
    if in_len <= _DENSE_MAX_RATIO * taps:
        m = torch.from_numpy(_dense_matrix(in_len, out_len, float(scale), antialias, padding))
        m = m.to(device=x.device, dtype=x.dtype)
        return torch.matmul(m, x) if dim == 2 else torch.matmul(x, m.t())
    idx = torch.from_numpy(idx_np).to(x.device)
    w = torch.from_numpy(w_np).to(device=x.device, dtype=x.dtype)
    if dim == 2:
        w = w.unsqueeze(1)  # (out, 1, P): broadcast over W
    out = None
    for p in range(taps):
        term = x.index_select(dim, idx[:, p]) * w[..., p]
        out = term if out is None else out.add_(term)
    return out


def _plan(
    in_hw: tuple[int, int], scale: float | None, output_size: tuple[int, int] | None
) -> tuple[list[float], list[int]]:
    if (scale is None) == (output_size is None):
        raise ValueError("imresize: give exactly one of scale or output_size")
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"imresize: scale must be positive, got {scale}")
        scales = [float(scale), float(scale)]
        sizes = [int(math.ceil(scale * n)) for n in in_hw]
    else:
        sizes = [int(s) for s in output_size]
        if min(sizes) <= 0:
            raise ValueError(f"imresize: output_size must be positive, got {output_size}")
        scales = [o / i for o, i in zip(sizes, in_hw)]
    return scales, sizes


def _order(scales: list[float]) -> list[int]:
    # MATLAB sorts the scales ascending (stable): smaller scale first, H before W on a tie.
    return sorted(range(2), key=lambda k: scales[k])


def imresize(
    img: torch.Tensor,
    scale: float | None = None,
    output_size: tuple[int, int] | None = None,
    antialias: bool = True,
    *,
    padding: str = "symmetric",
) -> torch.Tensor:
    """Resize a (C, H, W) or (N, C, H, W) tensor like MATLAB's ``imresize(img, ..., 'bicubic')``.

    Give ``scale`` (output size is ``ceil(scale * size)``) or ``output_size`` as (H, W).
    ``padding`` is "symmetric" (current MATLAB) or "replicate" (older MATLAB). The output
    keeps the input's layout, device and floating dtype (integer input is computed in
    float32); it is neither rounded nor clamped.
    """
    _check_padding(padding)
    if img.dim() not in (3, 4):
        raise ValueError(f"imresize: expected a (C,H,W) or (N,C,H,W) tensor, got shape {tuple(img.shape)}")
    x = img if img.dim() == 4 else img.unsqueeze(0)
    if not x.is_floating_point():
        x = x.float()
    scales, sizes = _plan((x.shape[2], x.shape[3]), scale, output_size)
    for k in _order(scales):
        if sizes[k] == x.shape[2 + k] and scales[k] == 1.0:
            continue
        x = _resize_dim(x, 2 + k, sizes[k], scales[k], antialias, padding)
    return x if img.dim() == 4 else x.squeeze(0)


def _check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"imresize: padding must be one of {PADDINGS}, got {padding!r}")


def _round_uint8(x: torch.Tensor) -> torch.Tensor:
    # MATLAB converts to uint8 by rounding half away from zero and saturating.
    return torch.floor(x.clamp(0.0, 255.0) + 0.5)


def downscale_uint8(hr: np.ndarray, scale: int, padding: str = "replicate") -> np.ndarray:
    """Downscale an HxWx3 uint8 image by ``1/scale`` like MATLAB ``imresize(uint8_img, 1/scale)``.

    As in MATLAB, each one-dimensional pass is computed in double and stored back as
    uint8 (rounded half away from zero, saturated) before the next pass. The default
    replicate padding reproduces the published NTIRE/benchmark LR files exactly.
    """
    _check_padding(padding)
    if hr.dtype != np.uint8 or hr.ndim != 3:
        raise ValueError(f"downscale_uint8: expected an HxWxC uint8 array, got {hr.dtype} {hr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).unsqueeze(0).to(torch.float64)
    factor = 1.0 / scale
    scales, sizes = _plan((x.shape[2], x.shape[3]), factor, None)
    for k in _order(scales):
        x = _round_uint8(_resize_dim(x, 2 + k, sizes[k], scales[k], True, padding))
    return x.squeeze(0).permute(1, 2, 0).to(torch.uint8).numpy()
