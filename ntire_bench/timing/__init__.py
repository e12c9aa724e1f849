"""Timing a forward pass: the harness's own clocks, warm-up, timed repeats, adaptive sampling, summaries."""

from ntire_bench.timing.runtime import TimingSettings, summarize_dataset, summarize_runs, summarize_samples
from ntire_bench.timing.adaptive import AdaptiveSampler, WarmupDetector

__all__ = ["AdaptiveSampler", "summarize_dataset", "summarize_runs", "summarize_samples", "TimingSettings",
    "WarmupDetector"]
