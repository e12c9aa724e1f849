"""Does scoring SR files against HR files cost at most ~1.5x decoding them?

Writes bicubic x4 upscales of a benchmark set's LR images as PNG files into a temporary
folder (once, before any timing), then times, interleaved over several repeats in one
process: (a) decoding every SR and HR PNG sequentially with ``read_image``, and (b)
``score_files`` over the same pairs (decode both, check, PSNR/SSIM on RGB and Y). Prints
both, their ratio (b)/(a) in wall and CPU time (medians), and exits 1 if the wall ratio
is above --max-ratio.

    python -m benchmarks.metrics.scoring_speed [--data ../shared/data] [--set B100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ntire_bench.archs.bicubic import Bicubic
from ntire_bench.data.images import ImageError, modcrop, read_image, write_image
from ntire_bench.metrics.quality import mean_quality, quantize, score_files
from benchmarks.common import SCALE, data_arguments, decode_all, set_pairs

def write_sr_files(pairs: list[tuple[Path, Path]], folder: Path) -> list[tuple[Path, Path]]:
    """Bicubic-upscale each LR into ``folder`` as PNG; return (SR file, HR file) pairs of equal size.

    An HR image whose sides are not multiples of the scale is cropped and written there too.
    """
    upscale = Bicubic(SCALE)
    out = []
    with torch.no_grad():
        for hr_path, lr_path in pairs:
            lr, hr = read_image(lr_path), read_image(hr_path)
            lr_chw = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1).float().unsqueeze(0)
            sr = quantize(upscale(lr_chw)[0], 255.0).permute(1, 2, 0).numpy()
            sr_path = folder / f"{hr_path.stem}_sr.png"
            write_image(sr_path, sr)
            cropped = modcrop(hr, SCALE)
            if cropped.shape != hr.shape:
                hr_path = folder / f"{hr_path.stem}_hr.png"
                write_image(hr_path, cropped)
            if cropped.shape != sr.shape:
                raise SystemExit(f"error: {lr_path} x{SCALE} does not match {hr_path}; check the LR/HR pairing")
            out.append((sr_path, hr_path))
    return out


def score_all(pairs: list[tuple[Path, Path]], workers: int | None) -> tuple[float, float, list]:
    """(wall seconds, process CPU seconds over all threads, per-pair results) of score_files."""
    start, cpu = time.perf_counter(), time.process_time()
    results = score_files(pairs, border=SCALE, workers=workers)
    return time.perf_counter() - start, time.process_time() - cpu, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser, model_zoo=False)
    parser.add_argument("--set", default="B100", help="benchmark set to use (default B100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each; medians are reported")
    parser.add_argument("--workers", type=int, default=None, help="score_files worker threads (default: its own)")
    parser.add_argument("--max-ratio", type=float, default=1.5, help="fail above this scoring/decoding wall-time ratio")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    sources = set_pairs(args.data, args.set)
    with tempfile.TemporaryDirectory(prefix="scoring_speed_") as tmp:
        try:
            pairs = write_sr_files(sources, Path(tmp))
        except ImageError as exc:
            raise SystemExit(f"error: {exc}") from None
        decode_all(pairs)  # warm-up: file cache, decoder
        _, _, results = score_all(pairs[:4], args.workers)  # warm-up: threads, buffers
        load_before = os.getloadavg()[0]
        decode_wall, decode_cpu, score_wall, score_cpu = [], [], [], []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            wall, cpu = decode_all(pairs)
            decode_wall.append(wall)
            decode_cpu.append(cpu)
            wall, cpu, results = score_all(pairs, args.workers)
            score_wall.append(wall)
            score_cpu.append(cpu)
        load_after = os.getloadavg()[0]

    failed = [(pair, r) for pair, r in zip(pairs, results) if isinstance(r, Exception)]
    if failed:
        raise SystemExit(f"error: {len(failed)} pair(s) could not be scored, first: {failed[0][1]}")
    n = len(pairs)
    decode, scoring = statistics.median(decode_wall), statistics.median(score_wall)
    ratio = scoring / decode
    cpu_ratio = statistics.median(score_cpu) / statistics.median(decode_cpu)
    means = mean_quality(results)
    print(f"set {args.set}: {n} pairs, {os.cpu_count()} CPUs, {args.repeats} repeats")
    print(f"bicubic x4 means: psnr {means['psnr']:.4f}  psnr_y {means['psnr_y']:.4f}  ssim {means['ssim']:.4f}  ssim_y {means['ssim_y']:.4f}")
    print(
        f"decode  (read_image, {2 * n} PNGs, sequential): {decode:.3f} s median wall "
        f"[{min(decode_wall):.3f} .. {max(decode_wall):.3f}], {statistics.median(decode_cpu):.3f} s CPU"
    )
    print(
        f"scoring (score_files, {n} pairs):            {scoring:.3f} s median wall "
        f"[{min(score_wall):.3f} .. {max(score_wall):.3f}], {statistics.median(score_cpu):.3f} s CPU"
    )
    print(f"ratio scoring_time / decode_time: {ratio:.2f} (wall)  {cpu_ratio:.2f} (CPU)")
    busy = max(load_before, load_after)
    if busy > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {busy:.1f} on {os.cpu_count()} CPUs while measuring; other processes share the cores, wall times are unreliable")
    if ratio > args.max_ratio:
        print(f"FAIL: scoring takes {ratio:.2f}x the decode time, above the {args.max_ratio:.2f}x budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
