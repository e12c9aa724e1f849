"""Run-to-run stability of the headline runtime: this harness's method vs the official one.

Times rlfn and bicubic K times on Set14 LR images, every pass in a fresh worker process,
and prints the coefficient of variation (CV) of the per-pass headline runtime (mean of
per-image medians). The official method is the same code with no warm-up and one sample
per image. Both are measured in the same run, interleaved submission by submission.

    python benchmarks/runtime_stability.py [--data ../shared/data] [--runs 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ntire_bench.data import IMAGE_SUFFIXES  # noqa: E402
from ntire_bench.images import read_image  # noqa: E402
from ntire_bench.plugins import discover, select  # noqa: E402
from ntire_bench.runner import RunConfig, bench_submission  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model-zoo", type=Path, default=REPO.parent / "shared" / "model_zoo")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--submissions", nargs="+", default=["rlfn", "bicubic"])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    lr_dir = args.data / "Set14" / "LR"
    inputs = [read_image(p) for p in sorted(lr_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    entries = select(discover([REPO / "submissions"], include_entry_points=False), args.submissions)
    methods = {
        "ntire-bench": dict(warmup=None, repeats=None),
        "official (1 sample, no warm-up)": dict(warmup=0, repeats=1),
    }
    figures = []
    print(f"Set14: {len(inputs)} LR images, {args.runs} passes per method, each pass in a fresh process")
    for entry in entries:
        for method, timing in methods.items():
            config = RunConfig(device=args.device, model_zoo=[args.model_zoo], runs=args.runs,
                               threads=args.threads, progress=False, **timing)
            result = bench_submission(entry, inputs, config)
            runtime = result["runtime_ms"]
            figures.append({"submission": entry.name, "method": method, "runs_ms": runtime["runs"],
                            "run_cv": runtime["run_cv"], "settings": result["settings"],
                            "device": result["environment"]["device_name"]})
            passes = ", ".join(f"{v:.2f}" for v in runtime["runs"])
            print(f"{entry.name:8s} {method:32s} CV {runtime['run_cv']:6.2%}   passes (ms): {passes}")
    print(f"device: {figures[0]['device']}, threads: {result['environment']['threads']}")
    for entry in entries:
        ours, official = (f["run_cv"] for f in figures if f["submission"] == entry.name)
        print(f"{entry.name}: official CV / ntire-bench CV = {official / ours:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
