"""Quality metrics computed exactly like the official NTIRE ESR code (KAIR ``utils_image``).

Every convention here (uint8 quantisation, border crop, Y channel, SSIM window) exists
to reproduce the official numbers; ``docs/metrics.md`` explains each one. All functions
take torch tensors on any device and are vectorised.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Iterable, Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

METRIC_KEYS = ("psnr", "psnr_y", "ssim", "ssim_y")

_SSIM_WIN = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255.0) ** 2
_SSIM_C2 = (0.03 * 255.0) ** 2
# BT.601 luma as in MATLAB's rgb2ycbcr, for RGB in 0..255.
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def quantize(sr: torch.Tensor, data_range: float) -> torch.Tensor:
    """Float SR output -> uint8: clamp to [0, data_range], scale to 0..255, round half to even.

    Matches the official ``np.uint8((x.clamp(0, 1) * 255).round())``: numpy and torch
    both round half to even. The layout is kept.
    """
    if data_range <= 0:
        raise ValueError(f"quantize: data_range must be positive, got {data_range}")
    x = sr.detach()
    if not x.is_floating_point():
        x = x.float()
    x = x.clamp(0.0, float(data_range))
    if data_range != 255.0:
        x = x * (255.0 / data_range)
    return x.round().to(torch.uint8)


def _y_numpy(rgb: np.ndarray) -> np.ndarray:
    """Luma of a uint8 (3, H, W) array, computed in float64 and rounded back to uint8."""
    y = _Y_WEIGHTS[0] * rgb[0].astype(np.float64)
    y += _Y_WEIGHTS[1] * rgb[1]
    y += _Y_WEIGHTS[2] * rgb[2]
    y /= 255.0
    y += 16.0
    return np.rint(y).astype(np.uint8)  # rint rounds half to even, like ndarray.round()


def _y_torch(rgb: torch.Tensor) -> torch.Tensor:
    x = rgb.to(torch.float64)
    y = (_Y_WEIGHTS[0] * x[..., 0, :, :] + _Y_WEIGHTS[1] * x[..., 1, :, :] + _Y_WEIGHTS[2] * x[..., 2, :, :]) / 255.0
    return (y + 16.0).round().to(torch.uint8)


def rgb_to_y(img_u8: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of a uint8 RGB tensor (..., 3, H, W), as a uint8 tensor (..., H, W).

    Same as the official ``rgb2ycbcr(img, only_y=True)`` on uint8 input: computed in
    float64 and rounded back to uint8, so PSNR-Y and SSIM-Y see integer luma.
    """
    if img_u8.dtype != torch.uint8 or img_u8.dim() < 3 or img_u8.shape[-3] != 3:
        raise ValueError(f"rgb_to_y: expected a uint8 (..., 3, H, W) tensor, got {img_u8.dtype} {tuple(img_u8.shape)}")
    if img_u8.device.type == "cpu" and img_u8.dim() == 3:
        return torch.from_numpy(_y_numpy(img_u8.numpy()))
    return _y_torch(img_u8)


@lru_cache(maxsize=None)
def _gaussian_1d() -> np.ndarray:
    # cv2.getGaussianKernel is what the official ssim() builds its window from.
    return cv2.getGaussianKernel(_SSIM_WIN, _SSIM_SIGMA).astype(np.float64)


def _check_ssim_size(h: int, w: int) -> None:
    if h < _SSIM_WIN or w < _SSIM_WIN:
        raise ValueError(
            f"ssim: images of {h}x{w} after the border crop are smaller than the "
            f"{_SSIM_WIN}x{_SSIM_WIN} window; use larger images or a smaller border"
        )


# SSIM needs, per pixel, 2*mu_x*mu_y, mu_x^2 + mu_y^2, 2*cov_xy and var_x + var_y. All four
# follow from Gaussian means of s = x + y and d = x - y and of s^2 and d^2, so four maps
# are filtered instead of the usual five (x, y, x^2, y^2, xy):
#   P = mu_s^2 - mu_d^2 = 4 mu_x mu_y          Q = mu_s^2 + mu_d^2 = 2 (mu_x^2 + mu_y^2)
#   G(s^2) - G(d^2) - P = 4 cov_xy             G(s^2) + G(d^2) - Q = 2 (var_x + var_y)
# so SSIM = (P + 2 C1)(G(s^2) - G(d^2) - P + 2 C2) / ((Q + 2 C1)(G(s^2) + G(d^2) - Q + 2 C2)).


_WORKSPACE = threading.local()
_WORKSPACE_MAX_BYTES = 64 * 2**20


def _workspace(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 (4, H, W) buffers, reused per thread for images up to ~1000x1000.

    Fresh multi-megabyte arrays come from mmap and are page-faulted in on every call,
    which doubled the cost of SSIM; reusing one buffer per worker thread avoids that.
    """
    need = 8 * h * w
    if need * 8 > _WORKSPACE_MAX_BYTES:
        buf = np.empty(need)
    else:
        buf = getattr(_WORKSPACE, "buf", None)
        if buf is None or buf.size < need:
            buf = _WORKSPACE.buf = np.empty(need)
    return buf[: need // 2].reshape(4, h, w), buf[need // 2 : need].reshape(4, h, w)


def _ssim_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 (H, W) arrays: float64, valid region only, as the official ssim()."""
    h, w = a.shape
    _check_ssim_size(h, w)
    k = _gaussian_1d()
    maps, filt = _workspace(h, w)
    np.add(a, b, out=maps[0], dtype=np.float64)
    np.subtract(a, b, out=maps[1], dtype=np.float64)
    np.multiply(maps[0], maps[0], out=maps[2])
    np.multiply(maps[1], maps[1], out=maps[3])
    # The four maps are filtered as one tall image: rows near a map's edge mix with the
    # next map, but those are exactly the rows the valid-region crop below drops.
    cv2.sepFilter2D(maps.reshape(4 * h, w), cv2.CV_64F, k, k, dst=filt.reshape(4 * h, w), borderType=cv2.BORDER_REFLECT)
    mu_s, mu_d, e_ss, e_dd = filt
    p, q, num, den = maps  # reuse the input buffers; every operand stays contiguous
    np.multiply(mu_s, mu_s, out=num)
    np.multiply(mu_d, mu_d, out=den)
    np.subtract(num, den, out=p)
    np.add(num, den, out=q)
    np.subtract(e_ss, e_dd, out=num)
    num -= p
    num += 2.0 * _SSIM_C2
    p += 2.0 * _SSIM_C1
    num *= p
    np.add(e_ss, e_dd, out=den)
    den -= q
    den += 2.0 * _SSIM_C2
    q += 2.0 * _SSIM_C1
    den *= q
    num /= den
    r = _SSIM_WIN // 2
    return float(num[r : h - r, r : w - r].mean())


def _ssim_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of each (H, W) pair of float64 (M, H, W) tensors -> (M,), with conv2d (any device)."""
    _check_ssim_size(a.shape[-2], a.shape[-1])
    m = a.shape[0]
    s = a + b
    d = a - b
    g = torch.from_numpy(_gaussian_1d()[:, 0]).to(a.device)
    x = torch.cat([s, d, s * s, d * d], dim=0).unsqueeze(1)
    x = F.conv2d(F.conv2d(x, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1)).squeeze(1)  # valid region
    mu_s, mu_d, e_ss, e_dd = x.split(m, dim=0)
    ms2 = mu_s * mu_s
    md2 = mu_d * mu_d
    p = ms2 - md2
    q = ms2 + md2
    num = (p + 2.0 * _SSIM_C1) * (e_ss - e_dd - p + 2.0 * _SSIM_C2)
    den = (q + 2.0 * _SSIM_C1) * (e_ss + e_dd - q + 2.0 * _SSIM_C2)
    return (num / den).mean(dim=(-2, -1))


def _psnr_from_mse(mse: float) -> float:
    if mse == 0.0:
        return float("inf")
    return 20.0 * math.log10(255.0 / math.sqrt(mse))


def _mse_numpy(a: np.ndarray, b: np.ndarray) -> float:
    # Integer squared differences summed in int64 are exact, so this equals the official
    # float64 np.mean((a - b) ** 2) bit for bit (every partial sum is an exact integer).
    diff = a.astype(np.int32) - b
    diff *= diff
    return float(diff.sum(dtype=np.int64)) / diff.size


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(4, torch.get_num_threads(), os.cpu_count() or 1)))
    return _POOL


def _forget_pool() -> None:
    # A forked child inherits the pool object but none of its threads; it would wait forever.
    global _POOL
    _POOL = None


os.register_at_fork(after_in_child=_forget_pool)


def _check_pair(sr: torch.Tensor, hr: torch.Tensor, border: int) -> None:
    if sr.dtype != torch.uint8 or hr.dtype != torch.uint8:
        raise ValueError(f"image_quality: expected uint8 tensors, got {sr.dtype} and {hr.dtype}; quantize() the SR first")
    if sr.dim() != 3 or sr.shape[0] != 3 or sr.shape != hr.shape:
        raise ValueError(
            f"image_quality: expected two (3, H, W) tensors of the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}"
        )
    if sr.device != hr.device:
        raise ValueError(f"image_quality: tensors are on {sr.device} and {hr.device}; move both to one device")
    if border < 0 or 2 * border >= min(sr.shape[1], sr.shape[2]):
        raise ValueError(f"image_quality: border {border} leaves nothing of a {sr.shape[1]}x{sr.shape[2]} image")


def _y_quality_numpy(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(MSE, SSIM) of the Y channels of two uint8 (3, H, W) arrays."""
    ya, yb = _y_numpy(a), _y_numpy(b)  # Y is per pixel, so cropping first changes nothing
    return _mse_numpy(ya, yb), _ssim_numpy(ya, yb)


def _quality_numpy(sr: np.ndarray, hr: np.ndarray, border: int) -> dict[str, float]:
    h, w = sr.shape[1:]
    rows, cols = slice(border, h - border), slice(border, w - border)
    a = np.ascontiguousarray(sr[:, rows, cols])
    b = np.ascontiguousarray(hr[:, rows, cols])
    pool = _pool()
    y_job = pool.submit(_y_quality_numpy, a, b)  # the longest job first
    ssims = list(pool.map(_ssim_numpy, a, b))  # one job per RGB channel
    mse = _mse_numpy(a, b)
    mse_y, ssim_y = y_job.result()
    return {
        "psnr": _psnr_from_mse(mse),
        "psnr_y": _psnr_from_mse(mse_y),
        "ssim": float(np.mean(ssims)),
        "ssim_y": ssim_y,
    }


def _quality_torch(sr: torch.Tensor, hr: torch.Tensor, border: int) -> dict[str, float]:
    h, w = sr.shape[1:]
    crop = (slice(None), slice(border, h - border), slice(border, w - border))
    a = torch.cat([sr[crop], _y_torch(sr[crop]).unsqueeze(0)]).to(torch.float64)
    b = torch.cat([hr[crop], _y_torch(hr[crop]).unsqueeze(0)]).to(torch.float64)
    sq = (a - b) ** 2
    mse = torch.stack([sq[:3].mean(), sq[3].mean()]).tolist()
    ssims = _ssim_torch(a, b).tolist()
    return {
        "psnr": _psnr_from_mse(mse[0]),
        "psnr_y": _psnr_from_mse(mse[1]),
        "ssim": float(np.mean(ssims[:3])),
        "ssim_y": float(ssims[3]),
    }


def image_quality(sr: torch.Tensor, hr: torch.Tensor, border: int) -> dict[str, float]:
    """PSNR and SSIM on RGB and on Y of two uint8 (3, H, W) tensors, ``border`` pixels cropped per side.

    Returns ``{"psnr", "psnr_y", "ssim", "ssim_y"}`` as floats; PSNR of identical images is inf.
    """
    return _image_quality(sr, hr, border)


def _image_quality(sr: torch.Tensor, hr: torch.Tensor, border: int, backend: str = "auto") -> dict[str, float]:
    _check_pair(sr, hr, border)
    # On CPU, numpy + OpenCV: torch's float64 conv2d there is ~50x slower than cv2's
    # separable filter, and its OpenMP element-wise ops stall when the cores are shared.
    # Elsewhere (CUDA), plain torch. Both are float64 and agree to ~1e-12.
    if backend == "numpy" or (backend == "auto" and sr.device.type == "cpu"):
        return _quality_numpy(sr.cpu().numpy(), hr.cpu().numpy(), border)
    return _quality_torch(sr, hr, border)


def mean_quality(results: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per-key arithmetic mean over images (an inf PSNR makes the mean inf, as in numpy)."""
    rows = list(results)
    if not rows:
        raise ValueError("mean_quality: no per-image results to average")
    return {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS if all(k in r for r in rows)}
