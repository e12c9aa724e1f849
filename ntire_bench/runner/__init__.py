"""A run: discover submissions, measure each in confined workers, check the claims, record the results."""

from ntire_bench.runner.context import RunConfig, RunContext
from ntire_bench.runner.discovery import discover, select
from ntire_bench.runner.evaluation import Executor, LocalExecutor, evaluate_submission, run_benchmark
from ntire_bench.runner.bench import bench_submission

__all__ = ["bench_submission", "discover", "evaluate_submission", "Executor", "LocalExecutor", "run_benchmark",
    "RunConfig", "RunContext", "select"]
