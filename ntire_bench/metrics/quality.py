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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from ntire_bench.data.images import ImageError, modcrop, read_image
from ntire_bench.results.records import METRIC_KEYS
from ntire_bench.metrics.ssim import LUMA, ssim_and_sse, ssim_torch, y_numpy, y_torch



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


def rgb_to_y(img_u8: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of a uint8 RGB tensor (..., 3, H, W), as a uint8 tensor (..., H, W).

    Same as the official ``rgb2ycbcr(img, only_y=True)`` on uint8 input: computed in
    float64 and rounded back to uint8, so PSNR-Y and SSIM-Y see integer luma.
    """
    if img_u8.dtype != torch.uint8 or img_u8.dim() < 3 or img_u8.shape[-3] != 3:
        raise ValueError(f"rgb_to_y: expected a uint8 (..., 3, H, W) tensor, got {img_u8.dtype} {tuple(img_u8.shape)}")
    if img_u8.device.type == "cpu" and img_u8.dim() == 3:
        return torch.from_numpy(y_numpy(img_u8.numpy()))
    return y_torch(img_u8)


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
# bands change no bit of the result (see ssim_and_sse for the final sum).


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
        halves = [(a, b, (LUMA, 0)), (a, b, (1, 2))]
        measure = _metrics_kernel().kernel_channels
    else:
        a, b = _planes(sr, rows, cols), _planes(hr, rows, cols)
        halves = [(a, b, range(0, 1), True), (a, b, range(1, 3), False)]  # Y costs most: it goes with one colour
        measure = ssim_and_sse
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
    a = torch.cat([sr[crop], y_torch(sr[crop]).unsqueeze(0)]).to(torch.float64)
    b = torch.cat([hr[crop], y_torch(hr[crop]).unsqueeze(0)]).to(torch.float64)
    sq = (a - b) ** 2
    mse = torch.stack([sq[:3].mean(), sq[3].mean()]).tolist()
    ssims = ssim_torch(a, b).tolist()
    return {
        "psnr": _psnr_from_mse(mse[0]),
        "psnr_y": _psnr_from_mse(mse[1]),
        "ssim": float(np.mean(ssims[:3])),
        "ssim_y": float(ssims[3]),
    }


def image_quality(sr: torch.Tensor, hr: torch.Tensor, border: int, backend: str = "auto", parallel: bool = True
                  ) -> dict[str, float]:
    """PSNR and SSIM on RGB and on Y of two uint8 (3, H, W) tensors, ``border`` pixels cropped per side.

    Returns ``{"psnr", "psnr_y", "ssim", "ssim_y"}`` as floats; PSNR of identical images is inf.
    ``backend``: "numba" (compiled kernel), "numpy" (OpenCV + numpy) or "torch"; "auto" takes
    the compiled kernel on CPU when numba is installed, else OpenCV + numpy (torch's float64
    conv2d on CPU is ~50x slower than OpenCV's separable filter, and its OpenMP element-wise
    ops stall when the cores are shared), and torch elsewhere (CUDA). All are float64 and
    agree to ~1e-12; ``parallel`` splits the channels over two threads (same result).
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


def score_pair(sr_path: Path, hr_path: Path, border: int, crop_to: int | None = None) -> dict[str, float] | Exception:
    """Decode one (SR, HR) file pair and measure it; a problem with the pair is returned, not raised.

    ``crop_to`` crops HR to a multiple of it first (``run`` crops HR to a multiple of the scale).
    """
    try:
        sr, hr = read_image(sr_path), read_image(hr_path)
    except ImageError as exc:
        return exc
    cropped = modcrop(hr, crop_to) if crop_to else hr
    if sr.shape != cropped.shape:
        after = " after cropping" if cropped.shape != hr.shape else ""
        return ImageError(
            f"{sr_path} is {sr.shape[0]}x{sr.shape[1]} but {hr_path} is {cropped.shape[0]}x{cropped.shape[1]}{after}; "
            f"the SR image must have the size of its HR image"
        )
    try:
        # Each pair is measured on one thread: the parallelism is across pairs.
        return image_quality(torch.from_numpy(sr).permute(2, 0, 1), torch.from_numpy(cropped).permute(2, 0, 1), border,
                             parallel=False)
    except ValueError as exc:
        return ValueError(f"{sr_path} vs {hr_path}: {exc}")


def score_files(
    pairs: Sequence[tuple[Path, Path]],
    border: int,
    workers: int | None = None,
    on_result: Callable[[int, dict[str, float] | Exception], None] | None = None,
    crop_to: int | None = None,
) -> list[dict[str, float] | Exception]:
    """``image_quality`` of each (SR file, HR file) pair, decoding some pairs while measuring others.

    Files are read with ``read_image``; SR must have the size of HR (cropped to a multiple of
    ``crop_to`` when given, as ``score_pair`` does). Results
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
        jobs = [pool.submit(score_pair, Path(sr), Path(hr), border, crop_to) for sr, hr in pairs]
        try:
            for index, job in enumerate(jobs):
                results.append(job.result())
                if on_result is not None:
                    on_result(index, results[-1])
        finally:
            for job in jobs:  # an exception in on_result must not leave the set being scored
                job.cancel()
    return results
