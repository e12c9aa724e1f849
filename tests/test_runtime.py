"""Timing logic on CPU: warm-up exclusion, statistics, and a model that sleeps a known time."""

from __future__ import annotations

import math
import statistics
import time

import pytest
import torch

from ntire_bench.runtime import (
    TimingSettings,
    coefficient_of_variation,
    default_cpu_threads,
    summarize_dataset,
    summarize_runs,
    summarize_samples,
    time_forward,
)


def test_warmup_calls_are_not_sampled():
    calls = []

    def forward():
        calls.append(len(calls))
        time.sleep(0.08 if len(calls) <= 2 else 0.0)  # the two warm-up calls are slow
        return torch.zeros(1)

    _, samples = time_forward(forward, TimingSettings(warmup=2, repeats=4))
    assert len(calls) == 6
    assert len(samples) == 4
    assert max(samples) < 60, f"a warm-up call leaked into the samples: {samples}"


def test_official_method_times_the_first_call():
    calls = []

    def forward():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.0)
        return torch.zeros(1)

    _, samples = time_forward(forward, TimingSettings(warmup=0, repeats=1))
    assert len(calls) == 1 and len(samples) == 1
    assert samples[0] >= 45


def test_sleeping_model_is_measured_within_tolerance():
    def forward():
        time.sleep(0.03)
        return torch.zeros(1)

    _, samples = time_forward(forward, TimingSettings(warmup=1, repeats=5))
    median = summarize_samples(samples)["median"]
    assert 29 <= median <= 30 * 2.5, f"30 ms sleep measured as {median:.2f} ms"


def test_time_forward_returns_the_last_output():
    counter = iter(range(100))
    out, _ = time_forward(lambda: torch.tensor(float(next(counter))), TimingSettings(warmup=2, repeats=3))
    assert out.item() == 4.0


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
    _, samples = time_forward(lambda: conv(x), TimingSettings(warmup=2, repeats=6, device="cuda:0"))
    assert len(samples) == 6 and all(s > 0 for s in samples)
