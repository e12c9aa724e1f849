"""Wall-time cost of isolation: `run` with each submission in a child process vs in-process.

Evaluates rlfn on Set14 on CPU both ways, alternating, several times, and prints the
ratio of median wall times (isolated / in-process) measured in this one run.

    python -m benchmarks.runner.isolation_overhead [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ntire_bench.runner.evaluation import run_benchmark
from ntire_bench.runner.context import RunConfig
from benchmarks.common import data_arguments, prepared_set, shipped, stage_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_arguments(parser)
    parser.add_argument("--submission", default="rlfn")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each mode")
    args = parser.parse_args()

    entries = shipped([args.submission])
    walls: dict[bool, list[float]] = {True: [], False: []}
    stages: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.repeat):
        for isolate in (True, False):
            with tempfile.TemporaryDirectory() as out:
                begin = time.perf_counter()
                datasets = [prepared_set(args.data, "Set14")]
                config = RunConfig(out_dir=Path(out), device="cpu", model_zoo=[args.model_zoo],
                                   isolate=isolate, progress=False, log=lambda m: None)
                record = run_benchmark(entries, datasets, config)[0]
                walls[isolate].append(time.perf_counter() - begin)
                stages[isolate].append(record.stages)
                assert record.status == "ok", record.error
    isolated, in_process = statistics.median(walls[True]), statistics.median(walls[False])
    print(f"{args.submission} on Set14, CPU, default timing settings (isolated runs include the sandbox and the "
          f"fresh-process verification), {args.repeat} runs per mode")
    print(f"isolated:   {', '.join(f'{w:.2f}' for w in walls[True])} s (median {isolated:.2f} s)")
    print(f"in-process: {', '.join(f'{w:.2f}' for w in walls[False])} s (median {in_process:.2f} s)")
    print(f"isolation overhead ratio: {isolated / in_process:.3f}")
    for isolate, label in ((True, "isolated"), (False, "in-process")):
        runs = len(stages[isolate])
        mean = {k: sum(s[k] for s in stages[isolate]) / runs for k in stages[isolate][0]}
        print(f"{label + ':':11s} {stage_line(mean, statistics.fmean(walls[isolate]))}")


if __name__ == "__main__":
    main()
