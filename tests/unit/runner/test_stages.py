"""The per-stage breakdown of a run's wall time (runner/stages.py)."""

from __future__ import annotations

import time

import pytest

from ntire_bench.runner.stages import STAGES, StageTimes


def test_stages_accumulate_move_and_merge():
    stages = StageTimes({"timed": 1.5})
    stages.add("timed", 0.5)
    stages.add("quality", 3.0)
    stages.move("quality", "warmup", 1.25)  # warm-up ran inside the quality request
    stages.move("quality", "warmup", 10.0)  # never more than the source holds
    assert stages.seconds["quality"] == 0.0 and stages.seconds["warmup"] == 3.0 and stages.seconds["timed"] == 2.0
    other = StageTimes()
    other.merge(stages)
    other.merge({"metrics": 0.25})
    assert list(other.to_dict()) == list(STAGES)
    assert other.to_dict()["metrics"] == 0.25 and other.to_dict()["warmup"] == 3.0


def test_a_timed_block_adds_its_wall_time_even_when_it_raises():
    stages = StageTimes()
    with pytest.raises(RuntimeError), stages.timing("audit"):
        time.sleep(0.02)
        raise RuntimeError("boom")
    assert 0.015 < stages.seconds["audit"] < 1.0


def test_an_unknown_stage_is_an_internal_error():
    with pytest.raises(KeyError, match="unknown stage 'forward'"):
        StageTimes().add("forward", 1.0)
