"""The SSIM/PSNR kernel compiled with numba (when numba is installed): one pass over memory per channel.

metrics.py uses it on CPU when numba can be imported and falls back to OpenCV + numpy
otherwise; the two agree to ~1e-16 in SSIM and exactly in PSNR (tests/unit/metrics/test_backends.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from ntire_bench.metrics.ssim import LUMA, SSIM_C1, SSIM_C2, Y_WEIGHTS, check_ssim_size, gaussian_1d


# # OpenCV + numpy above make ~25 passes over memory per channel; this kernel makes one. It
# walks down the rows, keeps the last 11 row-filtered rows of the four maps in a ring, and
# filters them down the columns, so everything it touches stays in the L2 cache. The
# arithmetic is that of the OpenCV path except for rounding order: OpenCV's row filter
# uses fused multiply-adds (on CPUs that have them) and the SSIM map is summed per column
# here, so the two paths differ by ~1e-16 in SSIM (PSNR is exact in both).


def ssim_sse_kernel(a: np.ndarray, b: np.ndarray, channel: int, g: np.ndarray) -> tuple[float, float]:
    """(sum of the SSIM map over the valid region, sum of squared differences) of one channel.

    ``a`` and ``b`` are uint8 (3, H, W) arrays of any strides; ``channel`` is 0, 1, 2 for
    R, G, B or LUMA for the rounded Y. Plain Python that numba compiles; it also runs
    uncompiled (slowly), which the tests use to check it without numba.
    """
    h, w = a.shape[1], a.shape[2]
    valid_w = w - 10
    ring = np.empty((4, 11, valid_w))  # row-filtered s, d, s^2, d^2 of the last 11 rows
    maps = np.empty((4, w))
    mu = np.empty((4, valid_w))
    ssim_cols = np.zeros(valid_w)
    g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10]
    sse = 0.0
    for i in range(h):
        for j in range(w):
            if channel == LUMA:  # as y_numpy: float64, same operation order, rounded
                x = Y_WEIGHTS[0] * np.float64(a[0, i, j])
                x += Y_WEIGHTS[1] * np.float64(a[1, i, j])
                x += Y_WEIGHTS[2] * np.float64(a[2, i, j])
                x = np.rint(x / 255.0 + 16.0)
                y = Y_WEIGHTS[0] * np.float64(b[0, i, j])
                y += Y_WEIGHTS[1] * np.float64(b[1, i, j])
                y += Y_WEIGHTS[2] * np.float64(b[2, i, j])
                y = np.rint(y / 255.0 + 16.0)
            else:
                x = np.float64(a[channel, i, j])
                y = np.float64(b[channel, i, j])
            s = x + y
            d = x - y
            maps[0, j] = s
            maps[1, j] = d
            maps[2, j] = s * s
            maps[3, j] = d * d
            sse += d * d
        slot = i % 11
        for m in range(4):
            src = maps[m]
            dst = ring[m, slot]
            for j in range(valid_w):
                dst[j] = (
                    g0 * src[j] + g1 * src[j + 1] + g2 * src[j + 2] + g3 * src[j + 3] + g4 * src[j + 4] + g5 * src[j + 5]
                    + g6 * src[j + 6] + g7 * src[j + 7] + g8 * src[j + 8] + g9 * src[j + 9] + g10 * src[j + 10]
                )
        if i < 10:
            continue
        top = i - 10  # the ring now holds rows top .. i; filter them down to row top + 5
        for m in range(4):
            r = ring[m]
            r0, r1, r2, r3, r4 = r[top % 11], r[(top + 1) % 11], r[(top + 2) % 11], r[(top + 3) % 11], r[(top + 4) % 11]
            r5, r6, r7, r8, r9, r10 = r[(top + 5) % 11], r[(top + 6) % 11], r[(top + 7) % 11], r[(top + 8) % 11], r[(top + 9) % 11], r[i % 11]
            out = mu[m]
            for j in range(valid_w):
                out[j] = (
                    g5 * r5[j] + g6 * (r6[j] + r4[j]) + g7 * (r7[j] + r3[j]) + g8 * (r8[j] + r2[j])
                    + g9 * (r9[j] + r1[j]) + g10 * (r10[j] + r0[j])
                )
        mu_s, mu_d, e_ss, e_dd = mu[0], mu[1], mu[2], mu[3]
        for j in range(valid_w):  # the formula of ssim_and_sse, in its order
            ms2 = mu_s[j] * mu_s[j]
            md2 = mu_d[j] * mu_d[j]
            p = ms2 - md2
            q = ms2 + md2
            num = (e_ss[j] - e_dd[j] - p + 2.0 * SSIM_C2) * (p + 2.0 * SSIM_C1)
            den = (e_ss[j] + e_dd[j] - q + 2.0 * SSIM_C2) * (q + 2.0 * SSIM_C1)
            ssim_cols[j] += num / den
    total = 0.0
    for j in range(valid_w):
        total += ssim_cols[j]
    return total, sse


@lru_cache(maxsize=None)
def compiled_kernel() -> Callable[[np.ndarray, np.ndarray, int, np.ndarray], tuple[float, float]] | None:
    """ssim_sse_kernel compiled by numba (once per process; cached on disk), or None without numba."""
    if os.environ.get("NTIRE_BENCH_NO_NUMBA"):
        return None
    try:
        import numba
    except ImportError:
        return None
    # nogil: threads measuring different images run in parallel. error_model="numpy": a
    # division does not check for zero, so the loops vectorise (den is never 0 anyway).
    # cache: the ~1.5 s compilation is paid once per installation, not once per process.
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy")(ssim_sse_kernel)
    except RuntimeError:  # no writable cache directory: compile in each process instead
        return numba.njit(nogil=True, error_model="numpy")(ssim_sse_kernel)


def kernel_channels(a: np.ndarray, b: np.ndarray, channels: Sequence[int]) -> list[tuple[float, float]]:
    """(SSIM, sum of squared differences) per channel (0-2 or LUMA) with the compiled kernel."""
    h, w = a.shape[1:]
    check_ssim_size(h, w)
    kernel = compiled_kernel()
    g = np.ascontiguousarray(gaussian_1d()[:, 0])
    out = []
    for c in channels:
        total, sse = kernel(a, b, c, g)
        out.append((total / ((h - 10) * (w - 10)), sse))
    return out
