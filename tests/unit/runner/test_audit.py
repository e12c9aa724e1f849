"""The parent's checks on one timed block (runner/audit.py): warm-up repeats it may hold, and every millisecond
between the two requests counted as the worker's."""

from __future__ import annotations

import numpy as np
import pytest

from ntire_bench.runner.audit import DatasetAudit, NotCredible, choose_probes, probe_pool
from ntire_bench.worker.protocol import Reply, WorkerFailure

SR = np.full((3, 8, 8), 100, dtype=np.uint8)
PROBES = [[0, 1, 1], [1, 2, 3]]


def _block(samples, leading):
    timed = Reply(True, {"samples": samples, "leading": leading, "stop_reason": "converged", "clocks_replaced": None,
                         "num_threads": 1})
    answer = Reply(True, {"outputs": [[0.5, 0.5]] * len(samples), "reference": [100 / 255, 100 / 255]})
    return timed, answer


def test_warm_up_repeats_are_kept_apart_from_the_samples_and_bounded():
    audit = DatasetAudit(1.0)
    timed, answer = _block([30.0, 20.0, 20.0], 1)
    block = audit.check_block(timed, 71.0, [0, 1, 2], PROBES, answer, 1.0, SR, 192, max_leading=4)
    assert block.warmup_ms == [30.0] and block.samples == [20.0, 20.0] and len(block.outputs) == 3
    with pytest.raises(WorkerFailure, match=r"reported 1 warm-up repeats in a block of 3 \(at most 0 here\)"):
        audit.check_block(timed, 71.0, [0, 1, 2], PROBES, answer, 1.0, SR, 192, max_leading=0)
    timed, answer = _block([20.0, 20.0], 2)
    with pytest.raises(WorkerFailure, match="warm-up repeats"):  # never a block of warm-up alone
        audit.check_block(timed, 41.0, [0, 1], PROBES, answer, 1.0, SR, 192, max_leading=4)


def test_time_between_the_reply_and_the_challenge_counts_in_the_clock_check():
    timed, answer = _block([20.0, 20.0], 0)
    DatasetAudit(1.0).check_block(timed, 41.0, [0, 1], PROBES, answer, 1.0, SR, 192)
    with pytest.raises(NotCredible, match="parent's clock measured 82.00 ms around 2 repeats"):
        DatasetAudit(1.0).check_block(timed, 41.0, [0, 1], PROBES, answer, 1.0, SR, 192, gap_ms=40.0)


def test_probes_drawn_from_a_pool_made_ahead_are_the_ones_drawn_on_the_spot():
    sr = np.random.default_rng(0).integers(0, 256, size=(3, 16, 16), dtype=np.uint8)
    ahead = choose_probes(sr, np.random.default_rng(1), pool=probe_pool(sr))
    assert ahead == choose_probes(sr, np.random.default_rng(1))
    assert all(1 < sr[c, y, x] < 254 for c, y, x in ahead)
