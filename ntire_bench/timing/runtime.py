"""Runtime measurement: warm-up, timed forward passes, and their statistics.

On CUDA each forward pass is bracketed by a pair of ``torch.cuda.Event``; the host
synchronises once per batch of repeats, so no synchronisation sits between the samples of a
batch. On CPU the clock is ``time.perf_counter_ns`` (CPU execution is synchronous).

Only the model's forward pass is inside the timed region: preparing the input of each
repeat (docs/isolation.md: every repeat sees a slightly different input), padding,
cropping, recording output probes, the uint8 conversion and the copies are all outside it.

The clock functions are bound when this module is imported, which the worker does before
any plugin code runs; ``clocks_replaced`` says whether plugin code has swapped them since.
The parent never relies on that alone: it times every request with its own clock.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

# Bound before any plugin is imported (see the module docstring).
_PERF_COUNTER_NS = time.perf_counter_ns
_CUDA_EVENT = torch.cuda.Event
_ELAPSED_TIME = torch.cuda.Event.elapsed_time
_RECORD = torch.cuda.Event.record
_SYNCHRONIZE = torch.cuda.synchronize

# Defaults measured for run-to-run stability (benchmarks/timing/runtime_stability.py); see docs/runtime.md.
DEFAULT_WARMUP = {"cuda": 5, "cpu": 2}
DEFAULT_REPEATS = {"cuda": 20, "cpu": 10}
# Adaptive mode's caps: warm-up may run longer than the fixed count when passes keep drifting,
# sampling never more than today's fixed repeats.
ADAPTIVE_WARMUP_CAP = {"cuda": 10, "cpu": 4}
# A run whose between-pass CV exceeds this is flagged as unstable in the results.
UNSTABLE_RUN_CV = 0.02
# Adaptive mode on CUDA reads the events back after this many repeats at a time.
CUDA_BATCH = 5


@dataclass(frozen=True)
class TimingSettings:
    """How one image is timed.

    ``fixed``: ``warmup`` untimed passes, then ``repeats`` timed ones. ``adaptive``: warm-up
    until consecutive passes stop drifting (at most ``warmup``), then samples until the
    median's ``confidence`` interval is within ``target`` of it (relative half-width), with
    at least ``min_repeats`` and at most ``repeats`` samples.
    """

    warmup: int
    repeats: int
    device: str = "cpu"
    mode: str = "fixed"
    min_repeats: int = 5
    target: float = 0.005
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.mode not in ("fixed", "adaptive"):
            raise ValueError(f"timing mode must be fixed or adaptive, got {self.mode!r}")
        if self.mode == "adaptive" and not 0 < self.target < 1:
            raise ValueError(f"the adaptive target must be a fraction in (0, 1), got {self.target}")

    @classmethod
    def for_device(cls, device: str, warmup: int | None = None, repeats: int | None = None,
                   mode: str = "fixed", **adaptive: float) -> "TimingSettings":
        """Settings with the per-device defaults filled in."""
        kind = "cuda" if str(device).startswith("cuda") else "cpu"
        default_warmup = ADAPTIVE_WARMUP_CAP[kind] if mode == "adaptive" else DEFAULT_WARMUP[kind]
        return cls(
            warmup=default_warmup if warmup is None else warmup,
            repeats=DEFAULT_REPEATS[kind] if repeats is None else repeats,
            device=str(device), mode=mode, **adaptive,
        )

    @property
    def on_cuda(self) -> bool:
        return str(self.device).startswith("cuda")

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


def pinned_cores(threads: int) -> list[int]:
    """The cores a CPU worker with ``threads`` threads is pinned to: the highest-numbered of this process's
    allowed cores, leaving the lowest to the harness and the OS (all of them when ``threads`` asks for it)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no affinity to pin
        return []
    return allowed[-max(1, min(threads, len(allowed))):]


def clocks_replaced() -> str | None:
    """Which of the clocks the harness reads plugin code has replaced since start-up, or None."""
    swapped = []
    if time.perf_counter_ns is not _PERF_COUNTER_NS:
        swapped.append("time.perf_counter_ns")
    if torch.cuda.Event is not _CUDA_EVENT:
        swapped.append("torch.cuda.Event")
    if torch.cuda.Event.elapsed_time is not _ELAPSED_TIME or torch.cuda.Event.record is not _RECORD:
        swapped.append("torch.cuda.Event methods")
    if torch.cuda.synchronize is not _SYNCHRONIZE:
        swapped.append("torch.cuda.synchronize")
    return ", ".join(swapped) or None


def perf_ms() -> float:
    """The harness's own monotonic clock, in ms (bound before any plugin code ran)."""
    return _PERF_COUNTER_NS() / 1e6


def run_warmup(forward: Callable[[], torch.Tensor], settings: TimingSettings, detector: object | None = None,
               first_ms: float | None = None) -> list[float]:
    """Untimed warm-up passes; returns their host durations (ms), which only decide when to stop.

    Fixed mode runs ``settings.warmup`` passes. Adaptive mode feeds a warm-up detector
    (``adaptive.WarmupDetector``) the quality pass's duration ``first_ms`` and then each
    pass's, and stops when it says the passes have stopped drifting (at most
    ``settings.warmup`` passes).
    """
    durations: list[float] = []
    adaptive = settings.mode == "adaptive" and detector is not None
    if adaptive and first_ms is not None:
        detector.add(first_ms)
    with torch.inference_mode():
        while len(durations) < settings.warmup and not (adaptive and detector.done):
            start = perf_ms()
            forward()
            if settings.on_cuda:
                _SYNCHRONIZE(settings.device)
            durations.append(perf_ms() - start)
            if adaptive:
                detector.add(durations[-1])
    return durations


def time_repeats(forward: Callable[[], torch.Tensor], settings: TimingSettings,
                 before: Callable[[int], None] = lambda k: None,
                 after: Callable[[int, torch.Tensor], None] = lambda k, out: None,
                 sampler_factory: Callable[[], object] | None = None,
                 detector: object | None = None) -> tuple[list[float], str, int]:
    """Timed forward passes; returns every repeat's duration (ms), why sampling stopped, and how many of the
    first repeats were warm-up.

    ``before(k)`` prepares repeat ``k``'s input and ``after(k, output)`` records what the
    parent will check about its output; both run outside the timed region.

    ``detector`` (adaptive mode; ``adaptive.WarmupDetector``, already fed the quality pass) makes the warm-up
    part of the block: the first repeats feed it until it says the passes have settled, and the repeats of its
    settled window are the first samples; those before the window were warm-up (timed and checked like every
    repeat, never sampled). Warm-up passes that only showed the model was warm are then not run apart from
    the samples. At most ``settings.warmup`` repeats are warm-up, ``settings.repeats`` samples.
    """
    sampler = sampler_factory() if settings.mode == "adaptive" and sampler_factory else None
    warming = detector is not None and sampler is not None and not detector.done
    limit = settings.repeats + (settings.warmup if warming else 0)
    durations: list[float] = []
    leading = 0 if not warming else None  # repeats before the first sample, once the detector has decided

    def take(duration: float) -> bool:
        """Record one repeat; True when sampling is done."""
        nonlocal leading
        durations.append(duration)
        if leading is None:
            detector.add(duration)
            if not detector.done:
                return False
            # the settled window's repeats are steady passes: they are the first samples (the quality pass, fed
            # first, may be in the window, but it is not a timed repeat)
            leading = max(0, len(durations) - detector.window) if detector.stop_reason == "settled" \
                else len(durations)
            return sampler.extend(durations[leading:]) > 0 and sampler.done
        if sampler is not None:
            sampler.add(duration)
            return sampler.done
        return False

    def sampled() -> int:
        return len(durations) - (leading if leading is not None else len(durations))

    with torch.inference_mode():
        if settings.on_cuda:
            while len(durations) < limit and sampled() < settings.repeats:
                batch = min(limit - len(durations), CUDA_BATCH if sampler else settings.repeats,
                            settings.repeats - sampled() if leading is not None else limit)
                pairs = [(_CUDA_EVENT(enable_timing=True), _CUDA_EVENT(enable_timing=True)) for _ in range(batch)]
                first = len(durations)
                for i, (start, end) in enumerate(pairs):
                    before(first + i)
                    start.record()
                    output = forward()
                    end.record()
                    after(first + i, output)
                _SYNCHRONIZE(settings.device)
                times = [_ELAPSED_TIME(start, end) for start, end in pairs]
                for j, elapsed in enumerate(times):
                    if take(elapsed):  # the batch's later repeats ran and were kept: reported, and checked too
                        durations.extend(times[j + 1:])
                        return durations, sampler.stop_reason, leading or 0
        else:
            while len(durations) < limit and sampled() < settings.repeats:
                k = len(durations)
                before(k)
                begin = _PERF_COUNTER_NS()
                output = forward()
                elapsed = (_PERF_COUNTER_NS() - begin) / 1e6
                after(k, output)
                if take(elapsed):
                    return durations, sampler.stop_reason, leading or 0
    return durations, "cap" if sampler is not None else "fixed", leading if leading is not None else len(durations)


# ------------------------------------------------------------------------ statistics


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
