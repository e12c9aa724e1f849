"""Quality metrics computed exactly like the official NTIRE ESR code (KAIR ``utils_image``).

Every convention here (uint8 quantisation, border crop, Y channel, SSIM window) exists
to reproduce the official numbers; ``docs/metrics.md`` explains each one. The metric
functions take torch tensors on any device. On CPU they run a numba-compiled kernel when
numba is installed and OpenCV + numpy otherwise (the two agree to ~1e-15); on CUDA, torch.
``score_files`` scores SR files against HR files, decoding some pairs while measuring others.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ntire_bench.data.images import ImageError, read_image

METRIC_KEYS = ("psnr", "psnr_y", "ssim", "ssim_y")

_SSIM_WIN = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 255.0) ** 2
_SSIM_C2 = (0.03 * 255.0) ** 2
# BT.601 luma as in MATLAB's rgb2ycbcr, for RGB in 0..255.
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_LUMA = 3  # channel number that stands for Y next to R, G, B = 0, 1, 2


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


# On CPU the maps of several channels (R, G, B and Y) are built, filtered and combined
# together, a band of rows at a time: every numpy and OpenCV call then covers many pixels
# (few calls, so worker threads rarely wait for the GIL) while memory stays bounded for
# large images. Each band carries the 5-row halo that the window needs. Per pixel the
# operations are exactly those of a whole-image computation, in the same order, so the
# bands change no bit of the result (see _ssim_and_sse for the final sum).

# numpy's ufunc buffer size. A reduction over the strided valid region of a whole map
# (``ssim_map[5:-5, 5:-5].mean()``) copies as many whole rows as fit in this many values
# into a buffer, sums each buffer pairwise and adds the buffers up in order. The bands
# sum each channel's values in exactly those chunks.
_SUM_CHUNK = 8192
# SSIM values per channel per band: ~30 rows of a 480x320 image. Larger bands mean fewer
# calls; smaller ones keep more of the maps in cache, which matters when two threads share
# the memory bus (measured best between 16k and 64k; 8k and 160k were 5-10% slower).
_BAND_VALUES = 32_768

_WORKSPACE = threading.local()
_WORKSPACE_MAX_BYTES = 64 * 2**20


def _workspace(size: int) -> np.ndarray:
    """A float64 scratch buffer of ``size`` values, reused per thread up to _WORKSPACE_MAX_BYTES.

    Fresh multi-megabyte arrays come from mmap and are page-faulted in on every call,
    which doubled the cost of SSIM; reusing one buffer per worker thread avoids that.
    """
    if 8 * size > _WORKSPACE_MAX_BYTES:
        return np.empty(size)
    buf = getattr(_WORKSPACE, "buf", None)
    if buf is None or buf.size < size:
        buf = _WORKSPACE.buf = np.empty(size)
    return buf[:size]


def _luma_rows(rgb: np.ndarray, rows: slice, out: np.ndarray, tmp: np.ndarray) -> None:
    """Rounded luma of ``rgb[:, rows]`` (uint8 (3, H, W), any strides) into float64 ``out``.

    The same operations in the same order as _y_numpy, so the values are bit-identical;
    they stay float64 (exact integers 16..235) instead of making a uint8 round trip.
    """
    # Casting copies then in-place products: the same values as products computed on
    # the fly from uint8, at half the cost (numpy's casting ufunc loops are slow).
    np.copyto(out, rgb[0, rows])
    out *= _Y_WEIGHTS[0]
    np.copyto(tmp, rgb[1, rows])
    tmp *= _Y_WEIGHTS[1]
    out += tmp
    np.copyto(tmp, rgb[2, rows])
    tmp *= _Y_WEIGHTS[2]
    out += tmp
    out /= 255.0
    out += 16.0
    np.rint(out, out=out)


def _ssim_and_sse(a: np.ndarray, b: np.ndarray, colours: range, luma: bool) -> list[tuple[float, float]]:
    """(SSIM, sum of squared differences) per channel of two uint8 (3, H, W) images.

    The channels are the rounded Y first if ``luma``, then the colour planes ``colours``
    (a range of 0, 1, 2); each plane's rows must be contiguous. SSIM is float64 over the
    valid region, as the official ssim(); the squared differences are exact integers.
    """
    h, w = a.shape[1:]
    _check_ssim_size(h, w)
    r = _SSIM_WIN // 2
    valid_h, valid_w = h - 2 * r, w - 2 * r
    chunk_rows = max(1, _SUM_CHUNK // valid_w)
    band_rows = chunk_rows * max(1, _BAND_VALUES // (chunk_rows * valid_w))
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
    k = _gaussian_1d()
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
        num += 2.0 * _SSIM_C2
        p += 2.0 * _SSIM_C1
        num *= p
        np.add(e_ss, e_dd, out=den)
        den -= q
        den += 2.0 * _SSIM_C2
        q += 2.0 * _SSIM_C1
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


def _metrics_kernel():
    from ntire_bench.metrics import ssim_numba as metrics_kernel

    return metrics_kernel


def _planes(img: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The crop of a uint8 (3, H, W) array with contiguous rows in each plane, copied only if needed."""
    crop = img[:, rows, cols]
    # Typically a (3, H, W) view of an (H, W, 3) image, as decoded: one transposing copy.
    return crop if crop.strides[2] == 1 else np.ascontiguousarray(crop)


def _quality_cpu(sr: np.ndarray, hr: np.ndarray, border: int, compiled: bool, parallel: bool = True) -> dict[str, float]:
    """Metrics of two uint8 (3, H, W) arrays (any strides), with the compiled kernel or OpenCV + numpy.

    With ``parallel`` the channels are split in two halves that run on the pool; the
    results do not depend on it.
    """
    h, w = sr.shape[1:]
    rows, cols = slice(border, h - border), slice(border, w - border)
    if compiled:
        a, b = sr[:, rows, cols], hr[:, rows, cols]
        halves = [(a, b, (_LUMA, 0)), (a, b, (1, 2))]
        measure = _metrics_kernel().kernel_channels
    else:
        a, b = _planes(sr, rows, cols), _planes(hr, rows, cols)
        halves = [(a, b, range(0, 1), True), (a, b, range(1, 3), False)]  # Y costs most: it goes with one colour
        measure = _ssim_and_sse
    if parallel:
        jobs = [_pool().submit(measure, *half) for half in halves]
        (y, red), (green, blue) = (job.result() for job in jobs)
    else:
        (y, red), (green, blue) = (measure(*half) for half in halves)
    pixels = (h - 2 * border) * (w - 2 * border)
    return {
        "psnr": _psnr_from_mse((red[1] + green[1] + blue[1]) / (3 * pixels)),
        "psnr_y": _psnr_from_mse(y[1] / pixels),
        "ssim": float(np.mean([red[0], green[0], blue[0]])),
        "ssim_y": y[0],
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


def _image_quality(
    sr: torch.Tensor, hr: torch.Tensor, border: int, backend: str = "auto", parallel: bool = True
) -> dict[str, float]:
    """image_quality with a chosen backend: "numba" (compiled kernel), "numpy" (OpenCV + numpy), "torch".

    "auto" takes the compiled kernel on CPU when numba is installed, else OpenCV + numpy:
    torch's float64 conv2d on CPU is ~50x slower than OpenCV's separable filter, and its
    OpenMP element-wise ops stall when the cores are shared. Elsewhere (CUDA) it takes
    torch. All are float64 and agree to ~1e-12.
    """
    _check_pair(sr, hr, border)
    if backend == "auto":
        backend = ("numba" if _metrics_kernel().compiled_kernel() is not None else "numpy") if sr.device.type == "cpu" else "torch"
    if backend == "numba" and _metrics_kernel().compiled_kernel() is None:
        raise ValueError("image_quality: the numba backend needs the numba package; pip install numba")
    if backend in ("numba", "numpy"):
        return _quality_cpu(sr.cpu().numpy(), hr.cpu().numpy(), border, backend == "numba", parallel)
    return _quality_torch(sr, hr, border)


def mean_quality(results: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per-key arithmetic mean over images (an inf PSNR makes the mean inf, as in numpy)."""
    rows = list(results)
    if not rows:
        raise ValueError("mean_quality: no per-image results to average")
    return {k: float(np.mean([r[k] for r in rows])) for k in METRIC_KEYS if all(k in r for r in rows)}


def _score_pair(sr_path: Path, hr_path: Path, border: int) -> dict[str, float] | Exception:
    """Decode one (SR, HR) file pair and measure it; a problem with the pair is returned, not raised."""
    try:
        sr, hr = read_image(sr_path), read_image(hr_path)
    except ImageError as exc:
        return exc
    if sr.shape != hr.shape:
        return ImageError(
            f"{sr_path} is {sr.shape[0]}x{sr.shape[1]} but {hr_path} is {hr.shape[0]}x{hr.shape[1]}; "
            f"the SR image must have the size of its HR image"
        )
    try:
        # Each pair is measured on one thread: the parallelism is across pairs.
        return _image_quality(torch.from_numpy(sr).permute(2, 0, 1), torch.from_numpy(hr).permute(2, 0, 1), border, parallel=False)
    except ValueError as exc:
        return ValueError(f"{sr_path} vs {hr_path}: {exc}")


def score_files(
    pairs: Sequence[tuple[Path, Path]],
    border: int,
    workers: int | None = None,
    on_result: Callable[[int, dict[str, float] | Exception], None] | None = None,
) -> list[dict[str, float] | Exception]:
    """``image_quality`` of each (SR file, HR file) pair, decoding some pairs while measuring others.

    Files are read with ``read_image``; SR and HR must already have the same size. Results
    come back in input order; a pair that cannot be scored (unreadable or corrupt file,
    sizes that differ, an image too small for ``border``) gets an ``ImageError`` or
    ``ValueError`` with a one-line reason in its place instead of raising. ``workers``
    threads (default: one more than the CPUs, up to 4) each decode and measure whole pairs;
    ``on_result(index, result)`` is called in input order as results become available.
    """
    if border < 0:
        raise ValueError(f"score_files: border must be >= 0, got {border}")
    if workers is None:
        workers = min(4, (os.cpu_count() or 1) + 1)
    if workers < 1:
        raise ValueError(f"score_files: workers must be >= 1, got {workers}")
    results: list[dict[str, float] | Exception] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score_files") as pool:
        jobs = [pool.submit(_score_pair, Path(sr), Path(hr), border) for sr, hr in pairs]
        try:
            for index, job in enumerate(jobs):
                results.append(job.result())
                if on_result is not None:
                    on_result(index, results[-1])
        finally:
            for job in jobs:  # an exception in on_result must not leave the set being scored
                job.cancel()
    return results
