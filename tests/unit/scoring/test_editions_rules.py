"""The edition rules beyond the score: one FLOP convention per leaderboard, official or audited complexity, the
NTIRE 2023 edition (runtime track, thresholds from the baseline, rank-sum sub-tracks), and the row flags."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from ntire_bench.results.records import AuditedComplexity
from ntire_bench.scoring.editions import load_edition
from ntire_bench.scoring.leaderboard import ScoringError, result_flags, score_results

from support.factory import make_result

V23, T23 = "DIV2K_valid", "LSDIR_DIV2K_test"


def counted(result, convention="fvcore", audited=None, counted_by="graph", fallback=None):
    """``result`` with its complexity marked as counted by ``convention``."""
    result.complexity.convention = convention
    result.complexity.flops_by_convention = {convention: result.complexity.flops}
    result.complexity.audited, result.complexity.counted_by, result.complexity.fallback = audited, counted_by, fallback
    return result


def entry_2023(name, psnr, runtime, params=400_000, flops=27e9, activations=100e6, memory=None):
    result = counted(make_result(name, psnr={V23: psnr[0], T23: psnr[1]}, runtime=runtime, params=params, flops=flops,
                                 thresholds={}), "ntire2023-hooks")
    result.complexity.activations = int(activations)
    for dataset in result.datasets.values():
        dataset.peak_memory_mb = memory
    return result


def rows(board):
    return board.table.set_index("submission")


def test_results_counted_by_another_convention_are_never_ranked_together():
    rfdn, other = entry_2023("rfdn", (29.04, 27.11), 35.5), entry_2023("other", (29.0, 27.1), 20.0)
    counted(other, "fvcore")
    with pytest.raises(ScoringError, match=r"^submission 'other' counted FLOPs by fvcore, edition 'ntire2023' by ntire2023-hooks; "
                                           r"re-run it with --edition ntire2023"):
        score_results([rfdn, other], edition="ntire2023")
    with pytest.raises(ScoringError, match="submission 'rfdn' counted FLOPs by ntire2023-hooks, edition 'ntire2024' by fvcore"):
        score_results([rfdn, counted(make_result("x", psnr={V23: 29.0}), "fvcore")], edition="ntire2024",
                      baseline="rfdn")


def test_ntire2023_ranks_by_runtime_within_the_baseline_psnr_margin():
    # The 2023 table: RFDN 29.04 / 27.11 dB; ranked teams down to 28.95 / 26.95; Alpha (28.81 / 26.88) unranked.
    board = score_results([entry_2023("rfdn", (29.04, 27.11), 35.54), entry_2023("megsr", (28.95, 26.95), 18.30),
                           entry_2023("alpha", (28.81, 26.88), 10.0), entry_2023("slow", (29.2, 27.3), 40.0)],
                          edition="ntire2023")
    table = rows(board)
    assert board.thresholds == pytest.approx({V23: 28.84, T23: 26.91})
    assert not table.loc["alpha", "eligible"] and "below the 28.84 dB threshold" in table.loc["alpha", "reason"]
    assert table.loc[["megsr", "rfdn", "slow"], "rank"].tolist() == [1, 2, 3]  # runtime alone orders them
    assert table.loc["megsr", "score"] == pytest.approx(math.exp(2 * 18.30 / 35.54))  # FLOPs and params weigh 0


def test_ntire2023_sub_tracks_add_ranks():
    entries = [entry_2023("rfdn", (29.04, 27.11), 35.0, params=433_000, flops=27.1e9, activations=112e6, memory=788),
               entry_2023("a", (29.0, 27.0), 20.0, params=300_000, flops=19e9, activations=80e6, memory=500),
               entry_2023("b", (29.0, 27.0), 15.0, params=500_000, flops=30e9, activations=90e6, memory=400)]
    table = rows(score_results(entries, edition="ntire2023"))
    # Model Complexity = params rank + FLOPs rank; Overall = runtime + params + FLOPs + activations + memory ranks
    assert table.loc[["a", "rfdn", "b"], "rank_model_complexity"].tolist() == [1, 2, 3]  # 1+1, 2+2, 3+3
    # runtime b < a < rfdn; params and FLOPs a < rfdn < b; activations a < b < rfdn; memory b < a < rfdn
    # a: 2 + 1 + 1 + 1 + 2 = 7, b: 1 + 3 + 3 + 2 + 1 = 10, rfdn: 3 + 2 + 2 + 3 + 3 = 13
    assert table.loc[["a", "b", "rfdn"], "rank_overall"].tolist() == [1, 2, 3]


def test_scored_complexity_official_or_audited():
    notes = ["params: 150,000 floating-point values ... (weight)"]
    base = counted(make_result("rlfn", psnr={"Set5": 30.0}, params=300_000, flops=20e9, thresholds={}))
    hider = counted(make_result("hider", psnr={"Set5": 30.0}, params=300_000, flops=20e9, thresholds={}),
                    audited=AuditedComplexity(flops=int(30e9), params=450_000, activations=None, notes=notes))
    official = rows(score_results([base, hider], edition=replace(load_edition("default"), scored_complexity="official")))
    assert official.loc["hider", "score_params"] == pytest.approx(math.exp(2))
    table = rows(score_results([base, hider], edition="default"))  # the live default scores the audited figures
    assert table.loc["hider", "score_params"] == pytest.approx(math.exp(2 * 450_000 / 300_000))
    assert table.loc["hider", "score_flops"] == pytest.approx(math.exp(2 * 30 / 20))
    assert table.loc["hider", "params_m"] == pytest.approx(0.45)
    assert table.loc["hider", "flags"] == "params: 150,000 floating-point values ... (weight) (the audited figure is scored)"
    assert table.loc["rlfn", "flags"] == ""


def test_a_count_from_the_submission_s_own_process_is_flagged():
    result = counted(make_result("x", psnr={"Set5": 30.0}), counted_by="submission",
                     fallback="its graph could not be exported: RuntimeError: Could not export Python function call")
    (flag,) = result_flags(result, load_edition("ntire2024"))
    assert flag == ("complexity counted in the submission's own process (its graph could not be exported: "
                    "RuntimeError: Could not export Python function call)")


def test_nondeterminism_flag_or_fail():
    base = counted(make_result("rlfn", psnr={"Set5": 30.0}, thresholds={}))
    noisy = counted(make_result("noisy", psnr={"Set5": 30.0}, thresholds={}))
    noisy.output_spread, base.output_spread = 3, 1  # one level is rounding, not nondeterminism
    table = rows(score_results([base, noisy], edition="default"))
    assert table.loc["noisy", "eligible"] and table.loc["noisy", "flags"].startswith(
        "its output varies by up to 3 grey levels between two passes over the same image")
    assert table.loc["rlfn", "flags"] == ""
    strict = replace(load_edition("default"), name="strict", nondeterminism="fail")
    table = rows(score_results([base, noisy], edition=strict))
    assert not table.loc["noisy", "eligible"]
    assert table.loc["noisy", "reason"] == ("non-deterministic output (up to 3 grey levels between two passes); the "
                                            "strict edition does not rank it")
