"""Run-to-run stability of the headline runtime: this harness's method vs the official one.

Times rlfn and bicubic K times on Set14 LR images, every pass in a fresh worker process,
and prints the coefficient of variation (CV) of the per-pass headline runtime (mean of
per-image medians). The official method is the same code with no warm-up and one sample
per image. Both are measured in the same run and interleaved pass by pass (ours, official,
ours, ...), so slow drift of the machine weighs on both methods alike.

    python -m benchmarks.timing.runtime_stability [--data ../shared/data] [--runs 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ntire_bench.data.datasets import IMAGE_SUFFIXES
from ntire_bench.data.images import read_image
from ntire_bench.runner.bench import bench_submission
from ntire_bench.runner.context import RunConfig
from ntire_bench.timing.runtime import summarize_runs
from benchmarks.common import data_arguments, shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--submissions", nargs="+", default=["rlfn", "bicubic"])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    lr_dir = args.data / "Set14" / "LR"
    inputs = [read_image(p) for p in sorted(lr_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    entries = shipped(args.submissions)
    methods = {
        "ntire-bench": dict(timing="fixed", warmup=None, repeats=None),
        "official (1 sample, no warm-up)": dict(timing="fixed", warmup=0, repeats=1),
    }
    figures = []
    print(f"Set14: {len(inputs)} LR images, {args.runs} passes per method, interleaved, each in a fresh process")
    for entry in entries:
        headlines: dict[str, list[float]] = {method: [] for method in methods}
        settings: dict[str, dict] = {}
        for _ in range(args.runs):
            for method, timing in methods.items():
                config = RunConfig(device=args.device, model_zoo=[args.model_zoo], runs=1,
                                   threads=args.threads, progress=False, **timing)
                result = bench_submission(entry, inputs, config)
                headlines[method].append(result["runtime_ms"].mean)
                settings[method] = {k: getattr(result["settings"], k) for k in ("warmup", "repeats", "threads")}
        for method, values in headlines.items():
            spread = summarize_runs(values)
            figures.append({"submission": entry.name, "method": method, "runs_ms": values, "run_cv": spread["run_cv"],
                            "settings": settings[method], "device": result["environment"].device_name})
            passes = ", ".join(f"{v:.2f}" for v in values)
            print(f"{entry.name:8s} {method:32s} CV {spread['run_cv']:6.2%}   mean {sum(values) / len(values):8.2f} ms"
                  f"   passes (ms): {passes}   {settings[method]}")
    print(f"device: {figures[0]['device']}")
    for entry in entries:
        ours, official = (f for f in figures if f["submission"] == entry.name)
        bias = sum(official["runs_ms"]) / sum(ours["runs_ms"]) - 1
        print(f"{entry.name}: CV official/ours = {official['run_cv'] / ours['run_cv']:.2f}x; "
              f"official mean is {bias:+.1%} vs ours (cold first calls)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
