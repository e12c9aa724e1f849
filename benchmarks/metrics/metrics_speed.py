"""How long do the quality metrics take next to simply decoding the images?

Times ``image_quality`` (PSNR + SSIM on RGB and on Y) over every pair of a benchmark set,
with bicubic-upscaled LR as the SR image, against decoding the same HR and LR PNGs with
``read_image``, in one process, and prints both in seconds and their ratio.

    python -m benchmarks.metrics.metrics_speed [--data ../shared/data] [--set B100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from ntire_bench.archs.bicubic import Bicubic
from ntire_bench.data.images import ImageError, modcrop, read_image
from ntire_bench.metrics.quality import image_quality, mean_quality, quantize
from benchmarks.common import SCALE, data_arguments, decode_all, set_pairs

def to_tensor(img: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous().to(device)


def measure_all(items: list[tuple[torch.Tensor, torch.Tensor]], device: str) -> tuple[float, float, list[dict]]:
    """(wall seconds, process CPU seconds over all threads, per-pair results)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    results = [image_quality(sr, hr, border=SCALE) for sr, hr in items]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser, model_zoo=False)
    parser.add_argument("--set", default="B100", help="benchmark set to use (default B100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each; medians are reported")
    parser.add_argument("--device", default="cpu", help="device for the metrics (cpu or cuda)")
    args = parser.parse_args(argv)

    pairs = set_pairs(args.data, args.set)
    try:
        decoded = [(read_image(hr), read_image(lr)) for hr, lr in pairs]  # also warms the file cache
    except ImageError as exc:
        raise SystemExit(f"error: {exc}") from None
    upscale = Bicubic(SCALE)
    items = []
    with torch.no_grad():
        for hr, lr in decoded:
            sr = quantize(upscale(to_tensor(lr, "cpu").float()), 255.0)
            items.append((sr.to(args.device), to_tensor(modcrop(hr, SCALE), args.device)))

    measure_all(items[:2], args.device)  # warm-up (thread pool, buffers, kernels)
    load_before = os.getloadavg()[0]
    decode_wall, decode_cpu, metric_wall, metric_cpu = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        wall, cpu = decode_all(pairs)
        decode_wall.append(wall)
        decode_cpu.append(cpu)
        wall, cpu, results = measure_all(items, args.device)
        metric_wall.append(wall)
        metric_cpu.append(cpu)
    load_after = os.getloadavg()[0]

    n = len(pairs)
    decode, metrics = statistics.median(decode_wall), statistics.median(metric_wall)
    means = mean_quality(results)
    print(f"set {args.set}: {n} pairs, metrics on {args.device}, {os.cpu_count()} CPUs, {args.repeats} repeats")
    print(f"bicubic x4 means: psnr {means['psnr']:.4f}  psnr_y {means['psnr_y']:.4f}  ssim {means['ssim']:.4f}  ssim_y {means['ssim_y']:.4f}")
    print(
        f"decode  (read_image, {2 * n} PNGs):       {decode:.3f} s median wall "
        f"[{min(decode_wall):.3f} .. {max(decode_wall):.3f}], {statistics.median(decode_cpu):.3f} s CPU, {1000 * decode / n:.2f} ms/pair"
    )
    print(
        f"metrics (PSNR+SSIM, RGB+Y, {n} pairs): {metrics:.3f} s median wall "
        f"[{min(metric_wall):.3f} .. {max(metric_wall):.3f}], {statistics.median(metric_cpu):.3f} s CPU, {1000 * metrics / n:.2f} ms/pair"
    )
    print(f"ratio metrics_time / decode_time: {metrics / decode:.2f} (wall)  {statistics.median(metric_cpu) / statistics.median(decode_cpu):.2f} (CPU)")
    busy = max(load_before, load_after)
    if busy > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {busy:.1f} on {os.cpu_count()} CPUs while measuring; other processes share the cores, wall times are unreliable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
