"""Timing logic on CPU: warm-up exclusion, statistics, and a model that sleeps a known time."""

from __future__ import annotations

import math
import statistics
import time

import pytest
import torch

from ntire_bench.timing.runtime import (TimingSettings, clocks_replaced, coefficient_of_variation, default_cpu_threads, run_warmup, summarize_dataset, summarize_runs, summarize_samples, time_repeats)
from ntire_bench.timing.adaptive import AdaptiveSampler, WarmupDetector


def _fixed(warmup: int, repeats: int, device: str = "cpu") -> TimingSettings:
    return TimingSettings(warmup=warmup, repeats=repeats, device=device)


def test_warmup_calls_are_not_sampled():
    calls = []

    def forward():
        calls.append(len(calls))
        time.sleep(0.08 if len(calls) <= 2 else 0.0)  # the two warm-up calls are slow
        return torch.zeros(1)

    settings = _fixed(2, 4)
    assert len(run_warmup(forward, settings)) == 2
    samples, reason, _ = time_repeats(forward, settings)
    assert len(calls) == 6 and len(samples) == 4 and reason == "fixed"
    assert max(samples) < 60, f"a warm-up call leaked into the samples: {samples}"


def test_official_method_times_the_first_call():
    calls = []

    def forward():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.0)
        return torch.zeros(1)

    settings = _fixed(0, 1)
    assert run_warmup(forward, settings) == []
    samples, _, _ = time_repeats(forward, settings)
    assert len(calls) == 1 and len(samples) == 1
    assert samples[0] >= 45


def test_sleeping_model_is_measured_within_tolerance():
    def forward():
        time.sleep(0.03)
        return torch.zeros(1)

    samples, _, _ = time_repeats(forward, _fixed(1, 5))
    median = summarize_samples(samples)["median"]
    assert 29 <= median <= 30 * 2.5, f"30 ms sleep measured as {median:.2f} ms"


def test_before_and_after_run_outside_the_timed_region():
    order = []

    def forward():
        order.append("forward")
        return torch.zeros(1)

    def before(k):
        order.append(f"before {k}")
        time.sleep(0.05)

    def after(k, out):
        order.append(f"after {k}")
        time.sleep(0.05)

    samples, _, _ = time_repeats(forward, _fixed(0, 2), before, after)
    assert order == ["before 0", "forward", "after 0", "before 1", "forward", "after 1"]
    assert max(samples) < 40  # neither the input preparation nor the probes are timed


def test_adaptive_sampling_stops_once_the_median_is_known():
    settings = TimingSettings(warmup=4, repeats=30, mode="adaptive", min_repeats=6, target=0.05)

    def forward():
        time.sleep(0.01)
        return torch.zeros(1)

    samples, reason, _ = time_repeats(forward, settings, sampler_factory=lambda: AdaptiveSampler(
        target=0.05, confidence=0.95, min_samples=6, max_samples=30))
    assert reason == "converged" and 6 <= len(samples) < 30


def test_adaptive_warmup_ends_when_passes_stop_drifting():
    durations = iter([0.06, 0.02, 0.02, 0.02, 0.02])

    def forward():
        time.sleep(next(durations))
        return torch.zeros(1)

    settings = TimingSettings(warmup=4, repeats=10, mode="adaptive")
    detector = WarmupDetector(min_passes=2, max_passes=5, window=2)
    ran = run_warmup(forward, settings, detector, first_ms=100.0)  # the cold quality pass
    # 100 (quality pass), 60, 20, 20: the last two agree within 5%, so warm-up stops there.
    assert len(ran) == 3 and detector.stop_reason == "settled"


def test_clock_replacement_is_noticed(monkeypatch):
    assert clocks_replaced() is None
    monkeypatch.setattr(time, "perf_counter_ns", lambda: 0)
    assert clocks_replaced() == "time.perf_counter_ns"


def test_sample_statistics_by_hand():
    stats = summarize_samples([4.0, 1.0, 100.0, 2.0, 3.0])
    assert stats["median"] == 3.0
    assert stats["mean"] == pytest.approx(22.0)
    assert stats["min"] == 1.0 and stats["max"] == 100.0
    # Linear-interpolated quartiles of 1,2,3,4,100 are 2 and 4.
    assert stats["iqr"] == pytest.approx(2.0)
    sd = math.sqrt(sum((v - 22.0) ** 2 for v in [1, 2, 3, 4, 100]) / 4)
    assert stats["cv"] == pytest.approx(sd / 22.0)
    assert stats["n"] == 5


def test_single_sample_has_no_cv():
    stats = summarize_samples([7.0])
    assert stats["cv"] is None and stats["iqr"] == 0.0 and stats["median"] == 7.0


def test_dataset_headline_is_mean_of_medians():
    summary = summarize_dataset([10.0, 20.0, 60.0])
    assert summary["mean"] == pytest.approx(30.0)
    assert summary["median"] == 20.0
    assert summary["std"] == pytest.approx(statistics.stdev([10, 20, 60]))


def test_run_spread_and_instability_flag():
    steady = summarize_runs([10.0, 10.1, 9.9])
    assert steady["run_cv"] == pytest.approx(coefficient_of_variation([10.0, 10.1, 9.9]))
    assert steady["unstable"] is False
    noisy = summarize_runs([10.0, 12.0, 9.0])
    assert noisy["unstable"] is True
    assert summarize_runs([10.0])["run_cv"] is None


def test_defaults_per_device_and_validation():
    assert TimingSettings.for_device("cpu") == TimingSettings(warmup=2, repeats=10, device="cpu")
    assert TimingSettings.for_device("cpu", mode="adaptive").warmup == 4  # a cap, not a count
    assert TimingSettings.for_device("cuda:0").repeats == 20
    assert TimingSettings.for_device("cpu", warmup=0, repeats=1).warmup == 0
    with pytest.raises(ValueError, match="repeats"):
        TimingSettings(warmup=0, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        TimingSettings(warmup=-1, repeats=1)


def test_cpu_timing_leaves_one_core_free(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert default_cpu_threads() == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert default_cpu_threads() == 1


@pytest.mark.gpu
def test_cuda_event_timing_records_every_repeat():
    x = torch.randn(1, 3, 64, 64, device="cuda")
    conv = torch.nn.Conv2d(3, 16, 3, padding=1).cuda()
    samples, _, _ = time_repeats(lambda: conv(x), _fixed(2, 6, "cuda:0"))
    assert len(samples) == 6 and all(s > 0 for s in samples)
    adaptive = TimingSettings(warmup=2, repeats=12, device="cuda:0", mode="adaptive", min_repeats=6, target=0.2)
    samples, reason, _ = time_repeats(lambda: conv(x), adaptive, sampler_factory=lambda: AdaptiveSampler(
        target=0.2, min_samples=6, max_samples=12))
    assert reason in ("converged", "cap") and 6 <= len(samples) <= 12


class _ScriptedClock:
    """Each forward pass takes the next scripted duration (ms) on the harness's clock, or its CUDA events."""

    def __init__(self, monkeypatch, durations_ms):
        import ntire_bench.timing.runtime as runtime

        self.durations = iter(durations_ms)
        self.now_ns = 0
        self.passes = 0
        monkeypatch.setattr(runtime, "_PERF_COUNTER_NS", lambda: self.now_ns)
        clock = self

        class Event:
            def __init__(self, enable_timing=True):
                self.at = None

            def record(self):
                self.at = clock.now_ns

        monkeypatch.setattr(runtime, "_CUDA_EVENT", Event)
        monkeypatch.setattr(runtime, "_ELAPSED_TIME", lambda start, end: (end.at - start.at) / 1e6)
        monkeypatch.setattr(runtime, "_SYNCHRONIZE", lambda device=None: None)

    def forward(self):
        self.passes += 1
        self.now_ns += int(next(self.durations) * 1e6)
        return torch.zeros(1)


def _adaptive_block(clock, quality_ms, device="cpu", repeats=10, warmup=4, target=0.01):
    settings = TimingSettings(warmup=warmup, repeats=repeats, device=device, mode="adaptive", min_repeats=6,
                              target=target)
    detector = WarmupDetector(min_passes=2, max_passes=warmup + 1, window=2)
    detector.add(quality_ms)
    return time_repeats(clock.forward, settings, sampler_factory=lambda: AdaptiveSampler(
        target=target, min_samples=6, max_samples=repeats), detector=detector)


def test_adaptive_warm_up_passes_are_the_first_repeats_and_the_settled_ones_are_sampled(monkeypatch):
    # quality pass 100 ms (cold), then 60 (still warming), then steady 20s: [60, 20] drifts, [20, 20] has settled
    clock = _ScriptedClock(monkeypatch, [60.0] + [20.0] * 20)
    durations, reason, leading = _adaptive_block(clock, 100.0)
    assert leading == 1 and durations[0] == 60.0
    assert reason == "converged" and durations[1:] == [20.0] * 6  # the settled pair are the first two samples
    assert clock.passes == 7  # no pass ran apart from the block: one warm-up, six samples


def test_a_warm_model_wastes_no_pass_on_warm_up(monkeypatch):
    clock = _ScriptedClock(monkeypatch, [20.0] * 20)
    durations, reason, leading = _adaptive_block(clock, 20.2)  # the quality pass already ran at speed
    assert (leading, reason, len(durations), clock.passes) == (0, "converged", 6, 6)


def test_a_model_that_never_settles_warms_up_to_the_cap_then_samples(monkeypatch):
    drifting = [90.0, 70.0, 50.0, 35.0]  # each pass far below the last: never settled
    clock = _ScriptedClock(monkeypatch, drifting + [20.0] * 20)
    durations, reason, leading = _adaptive_block(clock, 120.0)
    assert leading == 4 and durations[:4] == drifting and durations[4:] == [20.0] * 6 and reason == "converged"


def test_cuda_batches_stop_where_the_sampler_does_and_report_every_repeat_run(monkeypatch):
    """Events are read a batch (CUDA_BATCH) at a time: a sampler that converges inside a batch stops there, and the
    batch's later repeats, which ran and were kept, are reported with the rest (the parent checks them all)."""
    from ntire_bench.timing.runtime import CUDA_BATCH

    clock = _ScriptedClock(monkeypatch, [5.0] * 40)
    durations, reason, leading = _adaptive_block(clock, 5.0, device="cuda:0", repeats=20)
    assert reason == "converged" and leading == 0
    assert clock.passes == len(durations) == 2 * CUDA_BATCH  # converged at the 6th sample, inside the second batch
    assert durations == [5.0] * (2 * CUDA_BATCH)
