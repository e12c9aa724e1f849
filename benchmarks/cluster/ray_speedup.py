"""Wall time of `run` on the local executor versus Ray, for the shipped submissions on Set14 (CPU).

Three ways of running the same jobs, each into a fresh results directory:

- ``local``: the default executor, one job after another in this process;
- ``ray-1-node``: ``--executor ray`` with no address, i.e. a local Ray instance on this machine,
  which advertises ``ntire_bench_node`` once, so timed jobs run one at a time as locally;
- ``ray-2-nodes-sim``: two Ray nodes simulated on this one machine (``ray.cluster_utils``), each
  advertising ``ntire_bench_node`` once, so two timed jobs run at the same time. This shows
  what the scheduler does with two machines; its runtimes are NOT valid measurements, because
  the two "machines" share this machine's cores (the script prints how far they moved).

It prints the median wall time of each over ``--repeat`` alternating rounds, the ratio
local / Ray, and checks that PSNR, SSIM and complexity are identical to the local run's.

    python -m benchmarks.cluster.ray_speedup [--data ../shared/data] [--only rlfn --only span ...] [--runs 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ntire_bench.results.records import SubmissionResult
from ntire_bench.runner.evaluation import run_benchmark
from ntire_bench.runner.context import RunConfig
from benchmarks.common import data_arguments, prepared_set, shipped

DEFAULT_SUBMISSIONS = ("rlfn", "span", "efdn", "bicubic")  # the shipped submissions with weights in the zoo


def _run(mode: str, entries, datasets, args) -> tuple[float, float, dict[str, SubmissionResult]]:
    """Run every submission in ``mode``; return (wall of the run, Ray start-up, results by name)."""
    with tempfile.TemporaryDirectory() as out:
        config = RunConfig(out_dir=Path(out), device="cpu", model_zoo=[args.model_zoo], timing="fixed",
                           warmup=args.warmup, repeats=args.repeats, runs=args.runs, seed=1, progress=False,
                           log=lambda message: None)
        startup, cluster, executor = 0.0, None, None
        if mode != "local":
            import ray

            from ntire_bench.cluster.executor import CPU_NODE_RESOURCE, RayExecutor

            begin = time.perf_counter()
            if mode == "ray-2-nodes-sim":
                from ray.cluster_utils import Cluster

                node = {"num_cpus": 1, "resources": {CPU_NODE_RESOURCE: 1}, "object_store_memory": 200 * 2**20}
                cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
                cluster.add_node(**node)
                ray.init(address=cluster.address, logging_level="ERROR")
            executor = RayExecutor(init_options={"object_store_memory": 200 * 2**20, "logging_level": "ERROR"})
            executor.connect()
            startup = time.perf_counter() - begin
        try:
            begin = time.perf_counter()
            records = run_benchmark(entries, datasets, config, executor)
            wall = time.perf_counter() - begin
        finally:
            if cluster is not None:
                import ray

                ray.shutdown()
                cluster.shutdown()
    bad = [f"{r.submission}: {r.error}" for r in records if r.status not in ("ok", "no_weights")]
    if bad:
        raise SystemExit(f"{mode}: {'; '.join(bad)}")
    return wall, startup, {r.submission: r for r in records}


def _same_answers(ours: SubmissionResult, local: SubmissionResult) -> bool:
    a, b = ours.datasets["Set14"], local.datasets["Set14"]
    quality = (a.psnr, a.ssim, a.psnr_y, a.ssim_y) == (b.psnr, b.ssim, b.psnr_y, b.ssim_y)
    return ours.complexity == local.complexity and quality and [i.psnr for i in a.images] == [i.psnr for i in b.images]


def _runtime(result: SubmissionResult) -> float:
    return result.datasets["Set14"].runtime_ms.mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    parser.add_argument("--only", action="append", default=None, help="a submission (repeatable)")
    parser.add_argument("--runs", type=int, default=1, help="timing passes per dataset (each is one Ray job)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="local,ray-1-node,ray-2-nodes-sim")
    parser.add_argument("--repeat", type=int, default=1, help="alternating rounds of every mode (median reported)")
    args = parser.parse_args()

    names = args.only or list(DEFAULT_SUBMISSIONS)
    entries = shipped(names)
    datasets = [prepared_set(args.data, "Set14")]
    modes = args.modes.split(",")
    rounds = [{mode: _run(mode, entries, datasets, args) for mode in modes} for _ in range(args.repeat)]
    runs = {mode: (statistics.median(r[mode][0] for r in rounds), statistics.median(r[mode][1] for r in rounds),
                   rounds[-1][mode][2]) for mode in modes}
    jobs = len(names) * (args.runs + 1)
    print(f"{', '.join(names)} on Set14 (CPU, fixed timing: {args.warmup} warm-up, {args.repeats} repeats, "
          f"--runs {args.runs}): {jobs} jobs ({args.runs} timed pass(es) + 1 verification per submission); "
          f"median of {args.repeat} round(s)")
    local_wall = runs["local"][0] if "local" in runs else None
    for mode, (wall, startup, records) in runs.items():
        ratio = f"local/this {local_wall / wall:.2f}" if local_wall else ""
        line = f"{mode:>16}: run {wall:6.1f} s" + (f" (+ {startup:.1f} s Ray start-up)" if startup else "")
        print(f"{line:<48} {ratio}")
        if mode != "local" and "local" in runs:
            local = runs["local"][2]
            same = all(_same_answers(records[n], local[n]) for n in records)
            moved = ", ".join(f"{n} {_runtime(records[n]) / _runtime(local[n]) - 1:+.0%}" for n in records)
            print(f"{'':>18}PSNR/SSIM/complexity identical to local: {same}; runtime vs local: {moved}")


if __name__ == "__main__":
    main()
