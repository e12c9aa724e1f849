"""What each timing method costs and what it buys: fixed repeats, adaptive timing, the organisers' method.

Runs the shipped submissions that have weights (rlfn, span, efdn) and the bicubic
reference on Set14 with three methods, each pass a full ``run_benchmark`` into a fresh
results directory (nothing cached), interleaved pass by pass with the method order rotated
each pass, so slow drift of the machine weighs on every method alike:

- ``fixed``: ``RunConfig(timing="fixed")`` with its defaults (CPU: 2 warm-up, 10 samples);
- ``adaptive``: ``RunConfig()``, the default (warm-up detector, median-CI stopping rule);
- ``organisers``: ``timing="fixed", warmup=0, repeats=1`` (one sample per image, no warm-up).

Reported per method: wall time of the whole run and the time spent in forward passes
(warm-up plus timed samples, estimated from the recorded counts and per-image means), each
as a ratio to the organisers' method; the mean samples and warm-up passes per image; the
between-pass CV of each submission's Set14 headline; and the rank order each pass gives
(``scoring.score_results``, baseline rlfn), with the score intervals' within-noise groups.

``--variant TARGET[:WARMUP_CAP] ...`` adds an adaptive method per variant (to weigh new defaults).

    python -m benchmarks.timing.timing_cost [--passes 5] [--device cpu] [--variant 0.03:2] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ntire_bench.data.datasets import load_dataset_specs
from ntire_bench.results.records import SubmissionResult
from ntire_bench.runner.evaluation import run_benchmark
from ntire_bench.runner.context import RunConfig
from ntire_bench.data.datasets import prepare_datasets
from ntire_bench.timing.runtime import coefficient_of_variation
from ntire_bench.scoring.leaderboard import score_results
from benchmarks.common import DEFAULT_ZOO, REPO, shipped, stage_line, stage_totals

METHODS: dict[str, dict[str, Any]] = {
    "fixed": dict(timing="fixed"),
    "adaptive": dict(),
    "organisers": dict(timing="fixed", warmup=0, repeats=1),
}
REFERENCE_METHOD = "organisers"
DATASET = "Set14"


def parse_variant(text: str) -> dict[str, Any]:
    """``"0.03"`` or ``"0.03:2"`` as RunConfig overrides (target, and the warm-up cap in adaptive mode)."""
    target, _, warmup = text.partition(":")
    try:
        overrides: dict[str, Any] = {"target": float(target)}
        if warmup:
            overrides["warmup"] = int(warmup)
    except ValueError:
        raise SystemExit(f"--variant {text!r}: expected TARGET or TARGET:WARMUP_CAP, e.g. 0.03:2") from None
    return overrides


def forward_time_ms(result: SubmissionResult, dataset: str) -> float:
    """Time spent in forward passes while timing: per image, (warm-up + samples) x the mean sample."""
    total = 0.0
    for image in result.datasets[dataset].images:
        stats = image.runtime_ms
        if stats is not None:
            total += (stats.n + (stats.warmup or 0)) * stats.mean
    return total


def one_pass(method: str, entries, datasets, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    """One fresh run of every submission with ``method``; its wall time, headlines and ranks."""
    config = RunConfig(out_dir=out_dir, device=args.device, model_zoo=[args.model_zoo], runs=1,
                       threads=args.threads, force=True, progress=False, log=lambda line: None,
                       **METHODS[method])
    start = time.perf_counter()
    results = run_benchmark(entries, datasets, config)
    wall_s = time.perf_counter() - start
    failed = [f"{r.submission}: {r.error}" for r in results if r.status == "failed"]
    if failed:
        raise SystemExit(f"{method}: a submission failed ({'; '.join(failed)}); fix it before benchmarking")
    board = score_results(results, baseline=args.baseline)
    ranked = board.ranked
    groups = ranked["tie_group"].tolist() if "tie_group" in ranked else [None] * len(ranked)
    order = []
    for name, group, flagged in zip(ranked["submission"], groups,
                                    ranked["within_noise"] if "within_noise" in ranked else [False] * len(ranked)):
        order.append(f"{name}{'≈' + str(group) if flagged is True else ''}")
    per_image = [image.runtime_ms for r in results for image in r.datasets[DATASET].images if image.runtime_ms]
    return {
        "wall_s": wall_s,
        "forward_s": sum(forward_time_ms(r, DATASET) for r in results) / 1000,
        "headlines_ms": {r.submission: r.datasets[DATASET].runtime_ms.mean for r in results},
        "intervals_ms": {r.submission: [r.datasets[DATASET].runtime_ms.ci_low, r.datasets[DATASET].runtime_ms.ci_high]
                         for r in results},
        "samples_per_image": statistics.fmean(s.n for s in per_image),
        "warmup_per_image": statistics.fmean(s.warmup or 0 for s in per_image),
        "stop_reasons": dict(Counter(s.stop_reason for s in per_image)),
        "rank_order": order,
        "stages_s": stage_totals(results),
        "settings": results[0].settings.comparable() if results[0].settings else None,
        "device": results[0].environment.device_name,
        "threads": results[0].environment.threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-file", type=Path, default=REPO / "datasets.yaml")
    parser.add_argument("--model-zoo", type=Path, default=DEFAULT_ZOO)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--submissions", nargs="+", default=["rlfn", "span", "efdn", "bicubic"])
    parser.add_argument("--baseline", default="rlfn")
    parser.add_argument("--variant", nargs="*", default=[], metavar="TARGET[:WARMUP_CAP]",
                        help="also time adaptive with this target (relative half-width of the median's interval) "
                             "and, optionally, this warm-up cap, e.g. 0.03:2")
    parser.add_argument("--json", type=Path, default=None, help="also write every pass's figures here")
    args = parser.parse_args()
    for variant in args.variant:
        METHODS[f"adaptive@{variant}"] = parse_variant(variant)

    specs = load_dataset_specs(args.datasets_file)
    if DATASET not in specs:
        raise SystemExit(f"{args.datasets_file}: no {DATASET} entry; point --datasets-file at a file that has one")
    datasets = prepare_datasets([specs[DATASET]], progress=False)
    entries = shipped(args.submissions)
    names = [m for m in METHODS if m != REFERENCE_METHOD] + [REFERENCE_METHOD]
    passes: dict[str, list[dict[str, Any]]] = {m: [] for m in names}
    print(f"{DATASET}: {len(datasets[0].pairs)} images; methods {', '.join(names)}; {', '.join(e.name for e in entries)}; "
          f"{args.passes} fresh passes per method, interleaved (method order rotated each pass)", flush=True)
    with tempfile.TemporaryDirectory(prefix="timing-cost-") as tmp:
        for index in range(args.passes):
            for method in names[index % len(names):] + names[:index % len(names)]:
                figures = one_pass(method, entries, datasets, args, Path(tmp) / f"{method}-{index}")
                passes[method].append(figures)
                if args.json:  # after every pass, so an interrupted run keeps what it measured
                    args.json.write_text(json.dumps({"passes": passes}, indent=1, default=str))
                headlines = "  ".join(f"{k} {v:.2f}" for k, v in figures["headlines_ms"].items())
                print(f"pass {index + 1} {method:13s} wall {figures['wall_s']:6.1f} s  forward "
                      f"{figures['forward_s']:6.1f} s  n/img {figures['samples_per_image']:4.1f}  "
                      f"warm-up/img {figures['warmup_per_image']:3.1f}  ms: {headlines}  "
                      f"order: {' > '.join(figures['rank_order'])}", flush=True)
    report(passes, entries, args)


def report(passes: dict[str, list[dict[str, Any]]], entries, args: argparse.Namespace) -> None:
    """The compact summary table, and the JSON dump when asked for."""
    reference_wall = sum(p["wall_s"] for p in passes[REFERENCE_METHOD])
    reference_forward = sum(p["forward_s"] for p in passes[REFERENCE_METHOD])
    first = passes[REFERENCE_METHOD][0]
    print(f"\ndevice {first['device']}, {first['threads']} torch thread(s); {args.passes} passes per method")
    header = (f"{'method':13s} {'wall s':>7s} {'x org':>6s} {'fwd s':>7s} {'x org':>6s} {'n/img':>6s} "
              f"{'wu/img':>6s}  " + "  ".join(f"{'CV ' + e.name:>12s}" for e in entries) + "  rank orders (count)")
    print(header)
    summary = {}
    for method, runs in passes.items():
        wall = sum(p["wall_s"] for p in runs)
        forward = sum(p["forward_s"] for p in runs)
        cvs = {e.name: coefficient_of_variation([p["headlines_ms"][e.name] for p in runs]) for e in entries}
        orders = Counter(" > ".join(p["rank_order"]) for p in runs)
        stages = {k: sum(p["stages_s"][k] for p in runs) for k in runs[0]["stages_s"]}
        summary[method] = {"wall_s": wall, "wall_ratio": wall / reference_wall, "forward_s": forward, "stages_s": stages,
                           "forward_ratio": forward / reference_forward if reference_forward else None,
                           "samples_per_image": statistics.fmean(p["samples_per_image"] for p in runs),
                           "warmup_per_image": statistics.fmean(p["warmup_per_image"] for p in runs),
                           "run_cv": cvs, "rank_orders": dict(orders),
                           "mean_headline_ms": {e.name: statistics.fmean(p["headlines_ms"][e.name] for p in runs)
                                                for e in entries}}
        cv_text = "  ".join(f"{(cvs[e.name] or 0):12.2%}" for e in entries)
        order_text = "; ".join(f"{order} ({count})" for order, count in orders.most_common())
        print(f"{method:13s} {wall:7.1f} {wall / reference_wall:6.2f} {forward:7.1f} "
              f"{summary[method]['forward_ratio'] or 0:6.2f} {summary[method]['samples_per_image']:6.1f} "
              f"{summary[method]['warmup_per_image']:6.1f}  {cv_text}  {order_text}")
    print("x org: ratio to the organisers' method; fwd: time in warm-up and timed forward passes; "
          "n/img, wu/img: timed samples and warm-up passes per image; ≈k: within noise (score intervals overlap)")
    print("\nwhere the wall time goes (SubmissionResult.stages, summed over the passes; % of the method's wall time):")
    for method, figures in summary.items():
        print(f"{method:13s} {stage_line(figures['stages_s'], figures['wall_s'])}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "passes": passes}, indent=1, default=str))


if __name__ == "__main__":
    main()
