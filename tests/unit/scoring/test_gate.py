"""The CI gate: thresholds met, runs failed, nothing to check."""

from __future__ import annotations

import pytest

from ntire_bench.scoring.gate import GateError, check_gate

from support.factory import T, V, make_result, rlfn


# ---------------------------------------------------------------------------- the gate


def test_gate_passes_fails_and_reports_failed_runs():
    good = make_result("good", psnr={V: 27.0, T: 27.0})
    assert check_gate([good, rlfn()], "ntire2024").passed

    low = make_result("low", psnr={V: 26.80, T: 27.0})
    broken = make_result("broken", status="failed", error="ImportError: no module named foo")
    ref = make_result("bicubic", psnr={V: 24.0, T: 24.0}, reference=True)
    verdict = check_gate([good, low, broken, ref], "ntire2024")
    assert not verdict.passed
    assert [f.line() for f in verdict.failures] == [
        f"FAIL low {V}: PSNR 26.80 dB, threshold 26.90 dB",
        "FAIL broken: failed: ImportError: no module named foo",
    ]
    assert verdict.skipped == [("bicubic", "reference (listed, never ranked)")]


def test_gate_with_nothing_evaluated_is_an_error():
    with pytest.raises(GateError, match="nothing to gate"):
        check_gate([make_result("x", status="no_weights", psnr={V: 10.0})], "ntire2024")




def test_gate_with_no_threshold_at_all_refuses_to_pass():
    on_set5 = [make_result("rlfn", psnr={"Set5": 30.2}, thresholds={})]
    with pytest.raises(GateError, match="no PSNR threshold applies"):
        check_gate(on_set5)
    assert check_gate(on_set5, thresholds={"Set5": 30.0}).passed
