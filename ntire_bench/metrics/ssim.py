"""SSIM and luma exactly as the official NTIRE code computes them (KAIR ``utils_image.ssim``, ``rgb2ycbcr``).

The window, constants and luma weights are shared with the compiled kernel (ssim_numba.py).
On CPU ``ssim_and_sse`` builds and filters several channels' maps a band of rows at a time
(bit-identical to a whole-image computation); ``ssim_torch`` does the same with conv2d on any
device.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F


SSIM_WINDOW = 11


SSIM_SIGMA = 1.5


SSIM_C1 = (0.01 * 255.0) ** 2


SSIM_C2 = (0.03 * 255.0) ** 2


# BT.601 luma as in MATLAB's rgb2ycbcr, for RGB in 0..255.
Y_WEIGHTS = (65.481, 128.553, 24.966)


LUMA = 3  # channel number that stands for Y next to R, G, B = 0, 1, 2


def y_numpy(rgb: np.ndarray) -> np.ndarray:
    """Luma of a uint8 (3, H, W) array, computed in float64 and rounded back to uint8."""
    y = Y_WEIGHTS[0] * rgb[0].astype(np.float64)
    y += Y_WEIGHTS[1] * rgb[1]
    y += Y_WEIGHTS[2] * rgb[2]
    y /= 255.0
    y += 16.0
    return np.rint(y).astype(np.uint8)  # rint rounds half to even, like ndarray.round()


def y_torch(rgb: torch.Tensor) -> torch.Tensor:
    x = rgb.to(torch.float64)
    y = (Y_WEIGHTS[0] * x[..., 0, :, :] + Y_WEIGHTS[1] * x[..., 1, :, :] + Y_WEIGHTS[2] * x[..., 2, :, :]) / 255.0
    return (y + 16.0).round().to(torch.uint8)


@lru_cache(maxsize=None)
def gaussian_1d() -> np.ndarray:
    # cv2.getGaussianKernel is what the official ssim() builds its window from.
    return cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA).astype(np.float64)


def check_ssim_size(h: int, w: int) -> None:
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(
            f"ssim: images of {h}x{w} after the border crop are smaller than the "
            f"{SSIM_WINDOW}x{SSIM_WINDOW} window; use larger images or a smaller border"
        )


# numpy's ufunc buffer size. A reduction over the strided valid region of a whole map
# (``ssim_map[5:-5, 5:-5].mean()``) copies as many whole rows as fit in this many values
# into a buffer, sums each buffer pairwise and adds the buffers up in order. The bands
# sum each channel's values in exactly those chunks.
SUM_CHUNK = 8192


# SSIM values per channel per band: ~30 rows of a 480x320 image. Larger bands mean fewer
# calls; smaller ones keep more of the maps in cache, which matters when two threads share
# the memory bus (measured best between 16k and 64k; 8k and 160k were 5-10% slower).
BAND_VALUES = 32_768


_WORKSPACE = threading.local()


WORKSPACE_MAX_BYTES = 64 * 2**20


def _workspace(size: int) -> np.ndarray:
    """A float64 scratch buffer of ``size`` values, reused per thread up to WORKSPACE_MAX_BYTES.

    Fresh multi-megabyte arrays come from mmap and are page-faulted in on every call,
    which doubled the cost of SSIM; reusing one buffer per worker thread avoids that.
    """
    if 8 * size > WORKSPACE_MAX_BYTES:
        return np.empty(size)
    buf = getattr(_WORKSPACE, "buf", None)
    if buf is None or buf.size < size:
        buf = _WORKSPACE.buf = np.empty(size)
    return buf[:size]


def _luma_rows(rgb: np.ndarray, rows: slice, out: np.ndarray, tmp: np.ndarray) -> None:
    """Rounded luma of ``rgb[:, rows]`` (uint8 (3, H, W), any strides) into float64 ``out``.

    The same operations in the same order as y_numpy, so the values are bit-identical;
    they stay float64 (exact integers 16..235) instead of making a uint8 round trip.
    """
    # Casting copies then in-place products: the same values as products computed on
    # the fly from uint8, at half the cost (numpy's casting ufunc loops are slow).
    np.copyto(out, rgb[0, rows])
    out *= Y_WEIGHTS[0]
    np.copyto(tmp, rgb[1, rows])
    tmp *= Y_WEIGHTS[1]
    out += tmp
    np.copyto(tmp, rgb[2, rows])
    tmp *= Y_WEIGHTS[2]
    out += tmp
    out /= 255.0
    out += 16.0
    np.rint(out, out=out)


def ssim_and_sse(a: np.ndarray, b: np.ndarray, colours: range, luma: bool) -> list[tuple[float, float]]:
    """(SSIM, sum of squared differences) per channel of two uint8 (3, H, W) images.

    The channels are the rounded Y first if ``luma``, then the colour planes ``colours``
    (a range of 0, 1, 2); each plane's rows must be contiguous. SSIM is float64 over the
    valid region, as the official ssim(); the squared differences are exact integers.
    """
    h, w = a.shape[1:]
    check_ssim_size(h, w)
    r = SSIM_WINDOW // 2
    valid_h, valid_w = h - 2 * r, w - 2 * r
    chunk_rows = max(1, SUM_CHUNK // valid_w)
    band_rows = chunk_rows * max(1, BAND_VALUES // (chunk_rows * valid_w))
    first_colour = int(luma)
    nc = first_colour + len(colours)
    in_rows = min(band_rows, valid_h) + 2 * r
    map_size = 4 * nc * in_rows * w
    # The filtered maps start a little past a 4 KiB multiple from the maps: reading and
    # writing addresses 4 KiB apart stalls the CPU (4K aliasing) and slowed the filter ~30%.
    gap = 264
    # The colours' s and d in int16 use a quarter of the float64 values they fill.
    int_size = -(-2 * len(colours) * in_rows * w // 4)
    buf = _workspace(2 * map_size + gap + max(in_rows * w, int_size))
    scratch = buf[2 * map_size + gap :]
    k = gaussian_1d()
    colour_rows = slice(colours.start, colours.stop)
    ssim_sums = np.zeros(nc)
    sse = np.zeros(nc)
    for top in range(0, valid_h, band_rows):
        n = min(band_rows, valid_h - top)
        m = n + 2 * r
        rows = slice(top, top + m)
        size = 4 * nc * m * w
        maps = buf[:size].reshape(4, nc, m, w)
        filt = buf[map_size + gap : map_size + gap + size].reshape(4, nc, m, w)
        s, d, ss, dd = maps
        if luma:  # the squares' slots hold the two lumas until s and d exist
            tmp = scratch[: m * w].reshape(m, w)
            _luma_rows(a, rows, ss[0], tmp)
            _luma_rows(b, rows, dd[0], tmp)
            np.add(ss[0], dd[0], out=s[0])
            np.subtract(ss[0], dd[0], out=d[0])
        if colours:  # s and d of uint8 planes are small integers: int16, converted once
            sd = scratch.view(np.int16)[: 2 * len(colours) * m * w].reshape(2, len(colours), m, w)
            np.add(a[colour_rows, rows], b[colour_rows, rows], out=sd[0], dtype=np.int16)
            np.subtract(a[colour_rows, rows], b[colour_rows, rows], out=sd[1], dtype=np.int16)
            np.copyto(maps[:2, first_colour:], sd)
        np.multiply(s, s, out=ss)
        np.multiply(d, d, out=dd)
        # Each input row's squared difference counted once: the halo rows belong to
        # the neighbouring bands, except above the first band and below the last.
        first = r if top > 0 else 0
        last = n + r if top + n < valid_h else m
        sse += dd[:, first:last].reshape(nc, -1).sum(axis=1)
        # All maps are filtered as one tall image: rows near a map's edge mix with the
        # next map, but those are exactly the halo rows that the crop below drops.
        cv2.sepFilter2D(maps.reshape(-1, w), cv2.CV_64F, k, k, dst=filt.reshape(-1, w), borderType=cv2.BORDER_REFLECT)
        # The formula runs on whole rows, whose memory is contiguous (numpy is much faster
        # there than on the cropped rows); the last step keeps the valid columns only.
        mu_s, mu_d, e_ss, e_dd = filt[:, :, r : r + n]
        # The maps are no longer needed: their memory holds the temporaries.
        p, q, num, den = buf[: 4 * nc * n * w].reshape(4, nc, n, w)
        np.multiply(mu_s, mu_s, out=num)
        np.multiply(mu_d, mu_d, out=den)
        np.subtract(num, den, out=p)
        np.add(num, den, out=q)
        np.subtract(e_ss, e_dd, out=num)
        num -= p
        num += 2.0 * SSIM_C2
        p += 2.0 * SSIM_C1
        num *= p
        np.add(e_ss, e_dd, out=den)
        den -= q
        den += 2.0 * SSIM_C2
        q += 2.0 * SSIM_C1
        den *= q
        ssim_map = filt[0].reshape(-1)[: nc * n * valid_w].reshape(nc, n, valid_w)  # mu_s is used up
        np.divide(num[..., r : w - r], den[..., r : w - r], out=ssim_map)
        # Whole chunks are summed pairwise, then added in order with the rest.
        whole = n // chunk_rows * chunk_rows
        parts = [ssim_sums[:, None]]
        if whole:
            parts.append(np.add.reduce(ssim_map[:, :whole].reshape(nc, -1, chunk_rows * valid_w), axis=2))
        if whole < n:
            parts.append(np.add.reduce(ssim_map[:, whole:].reshape(nc, -1), axis=1)[:, None])
        ssim_sums = np.add.accumulate(np.concatenate(parts, axis=1), axis=1)[:, -1]
    return [(float(total) / (valid_h * valid_w), float(err)) for total, err in zip(ssim_sums, sse)]


def ssim_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of each (H, W) pair of float64 (M, H, W) tensors -> (M,), with conv2d (any device)."""
    check_ssim_size(a.shape[-2], a.shape[-1])
    m = a.shape[0]
    s = a + b
    d = a - b
    g = torch.from_numpy(gaussian_1d()[:, 0]).to(a.device)
    x = torch.cat([s, d, s * s, d * d], dim=0).unsqueeze(1)
    x = F.conv2d(F.conv2d(x, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1)).squeeze(1)  # valid region
    mu_s, mu_d, e_ss, e_dd = x.split(m, dim=0)
    ms2 = mu_s * mu_s
    md2 = mu_d * mu_d
    p = ms2 - md2
    q = ms2 + md2
    num = (p + 2.0 * SSIM_C1) * (e_ss - e_dd - p + 2.0 * SSIM_C2)
    den = (q + 2.0 * SSIM_C1) * (e_ss + e_dd - q + 2.0 * SSIM_C2)
    return (num / den).mean(dim=(-2, -1))
