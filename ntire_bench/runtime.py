"""Runtime measurement: warm-up, repeated timed forward passes, and their statistics.

On CUDA each forward pass is bracketed by a pair of ``torch.cuda.Event``; the host
synchronises once per image, after all repeats, so no sync sits between samples.
On CPU the clock is ``time.perf_counter_ns`` (CPU execution is synchronous).

Only the model's forward pass is inside the timed region: the host-to-device copy of the
LR input, padding, the uint8 conversion and the copy back are all outside it.

The official NTIRE script times each image once with no warm-up; that is the special
case ``TimingSettings(warmup=0, repeats=1)``, used by the stability benchmark.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

# Defaults measured for run-to-run stability (benchmarks/runtime_stability.py); see docs/runtime.md.
DEFAULT_WARMUP = {"cuda": 5, "cpu": 2}
DEFAULT_REPEATS = {"cuda": 20, "cpu": 10}
# A run whose between-pass CV exceeds this is flagged as unstable in the results.
UNSTABLE_RUN_CV = 0.02


@dataclass(frozen=True)
class TimingSettings:
    """How one image is timed: untimed warm-up passes, then ``repeats`` timed passes."""

    warmup: int
    repeats: int
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")

    @classmethod
    def for_device(cls, device: str, warmup: int | None = None, repeats: int | None = None) -> "TimingSettings":
        """Settings with the per-device defaults filled in."""
        kind = "cuda" if str(device).startswith("cuda") else "cpu"
        return cls(
            warmup=DEFAULT_WARMUP[kind] if warmup is None else warmup,
            repeats=DEFAULT_REPEATS[kind] if repeats is None else repeats,
            device=str(device),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def default_cpu_threads() -> int:
    """Torch threads for CPU timing: every available core but one, left to the harness and the OS.

    With every core busy, any other activity preempts one OpenMP thread and the whole
    parallel region waits for it; on a 2-core machine that made whole passes 20% slower.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def time_forward(forward: Callable[[], torch.Tensor], settings: TimingSettings) -> tuple[torch.Tensor, list[float]]:
    """Run ``forward`` warm-up + repeats times; return the last output and the timed samples in ms.

    Warm-up passes are never part of the samples: they absorb cuDNN autotuning, lazy
    initialisation and allocator growth for this input shape.
    """
    output = None
    with torch.inference_mode():
        for _ in range(settings.warmup):
            output = forward()
        if str(settings.device).startswith("cuda"):
            torch.cuda.synchronize(settings.device)
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(settings.repeats)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(settings.repeats)]
            for start, end in zip(starts, ends):
                start.record()
                output = forward()
                end.record()
            torch.cuda.synchronize(settings.device)
            samples = [start.elapsed_time(end) for start, end in zip(starts, ends)]
        else:
            samples = []
            for _ in range(settings.repeats):
                begin = time.perf_counter_ns()
                output = forward()
                samples.append((time.perf_counter_ns() - begin) / 1e6)
    assert output is not None
    return output, samples


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already-sorted values (numpy's default method)."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low))


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample standard deviation over mean, or None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else None


def summarize_samples(samples: Sequence[float]) -> dict[str, float | int | None]:
    """Per-image statistics of timed samples: median, mean, min, max, IQR, CV and count."""
    if not samples:
        raise ValueError("no timing samples to summarise")
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered),
        "mean": statistics.fmean(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "iqr": _quantile(ordered, 0.75) - _quantile(ordered, 0.25),
        "cv": coefficient_of_variation(ordered),
        "n": len(ordered),
    }


def summarize_dataset(per_image_medians: Sequence[float]) -> dict[str, float]:
    """Dataset-level runtime from per-image medians; ``mean`` is the headline figure."""
    if not per_image_medians:
        raise ValueError("no per-image runtimes to summarise")
    values = list(per_image_medians)
    return {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def summarize_runs(pass_headlines: Sequence[float]) -> dict[str, float | list[float] | bool | None]:
    """Spread between K whole timing passes: the per-pass headlines, their CV and a stability flag."""
    cv = coefficient_of_variation(pass_headlines)
    return {
        "runs": list(pass_headlines),
        "run_cv": cv,
        "unstable": bool(cv is not None and cv > UNSTABLE_RUN_CV),
    }
