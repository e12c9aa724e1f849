"""Does scoring an upload of SR images (``evaluate_uploads``) cost at most ~1.5x decoding its PNGs?

Writes bicubic x4 upscales of a benchmark set's LR images once, as an upload named the NTIRE
way (``<name>x4.png``), then times, interleaved over several repeats in one process: (a)
decoding every SR and HR PNG sequentially with ``read_image``, and (b) the whole of
``evaluate_uploads`` on the folder: opening the upload, matching names, checking every PNG
header, decoding and measuring PSNR/SSIM on RGB and Y. The same is timed on a .zip of the
upload (extraction included), for information: on Codabench the worker unzips before the
scoring program runs, so the folder is what the program sees. Prints medians (wall and CPU)
and their ratio to (a), and exits 1 if the folder's wall ratio is above --max-ratio.

    python -m benchmarks.uploads.upload_scoring [--data ../shared/data] [--set B100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch


from ntire_bench.archs.bicubic import Bicubic
from ntire_bench.uploads.evaluate import ReferenceSet, evaluate_uploads
from ntire_bench.data.images import read_image, write_image
from ntire_bench.metrics.quality import quantize
from benchmarks.common import SCALE, data_arguments, decode_all, set_pairs

def write_upload(pairs: list[tuple[Path, Path]], folder: Path) -> list[tuple[Path, Path]]:
    """Bicubic-upscale each LR into ``folder`` as ``<name>x4.png``; return the (SR, HR) file pairs."""
    upscale = Bicubic(SCALE)
    folder.mkdir(parents=True)
    out = []
    with torch.no_grad():
        for hr_path, lr_path in pairs:
            lr = torch.from_numpy(np.ascontiguousarray(read_image(lr_path))).permute(2, 0, 1).float().unsqueeze(0)
            sr_path = folder / f"{hr_path.stem}x{SCALE}.png"
            write_image(sr_path, quantize(upscale(lr)[0], 255.0).permute(1, 2, 0).numpy())
            out.append((sr_path, hr_path))
    return out


def timed(action) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds over all threads, result) of ``action()``."""
    start, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - start, time.process_time() - cpu, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser, model_zoo=False)
    parser.add_argument("--set", default="B100", help="benchmark set to use (default B100)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each; medians are reported")
    parser.add_argument("--workers", type=int, default=None, help="decode/measure threads (default: score_files')")
    parser.add_argument("--max-ratio", type=float, default=1.5, help="fail above this folder-scoring/decode wall ratio")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    sources = set_pairs(args.data, args.set)
    reference = ReferenceSet.from_folder(args.set, args.data / args.set / "HR", SCALE)
    with tempfile.TemporaryDirectory(prefix="upload_scoring_") as tmp:
        root = Path(tmp)
        pairs = write_upload(sources, root / "upload")
        archive = root / "upload.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
            for sr, _ in pairs:
                handle.write(sr, sr.name)

        def folder_run():
            return evaluate_uploads(root / "upload", reference, root / "work", workers=args.workers)

        def zip_run():
            return evaluate_uploads(archive, reference, root / "work", workers=args.workers)

        decode_all(pairs)  # warm-up: file cache, decoder, threads, numba
        folder_run()
        load_before = os.getloadavg()[0]
        times: dict[str, list[tuple[float, float]]] = {"decode": [], "folder": [], "zip": []}
        for _ in range(args.repeats):  # interleaved, so drift in machine load weighs on all three
            wall, cpu = decode_all(pairs)
            times["decode"].append((wall, cpu))
            wall, cpu, folder_result = timed(folder_run)
            times["folder"].append((wall, cpu))
            wall, cpu, zip_result = timed(zip_run)
            times["zip"].append((wall, cpu))
        load_after = os.getloadavg()[0]

    for label, result in (("folder", folder_result), ("zip", zip_result)):
        if not result.ok:
            raise SystemExit(f"error: the {label} upload was not scored: {result.result.error}")
    wall = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    data = folder_result.result.datasets[args.set]
    n = len(pairs)
    print(f"set {args.set}: {n} images, {os.cpu_count()} CPUs, {args.repeats} repeats; "
          f"bicubic x4 PSNR {data.psnr:.4f} dB, SSIM {data.ssim:.4f}")
    print(f"decode (read_image, {2 * n} PNGs, sequential): {wall['decode']:.3f} s wall, {cpu['decode']:.3f} s CPU")
    for label in ("folder", "zip"):
        print(f"evaluate_uploads ({label:6}):                 {wall[label]:.3f} s wall, {cpu[label]:.3f} s CPU  "
              f"-> ratio {wall[label] / wall['decode']:.2f} (wall)  {cpu[label] / cpu['decode']:.2f} (CPU)")
    busy = max(load_before, load_after)
    if busy > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {busy:.1f} on {os.cpu_count()} CPUs while measuring; other processes share "
              "the cores, wall times are unreliable")
    ratio = wall["folder"] / wall["decode"]
    if ratio > args.max_ratio:
        print(f"FAIL: scoring an upload takes {ratio:.2f}x the decode time, above the {args.max_ratio:.2f}x budget",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
