"""Scoring: per-metric scores, the runtime rule, eligibility, ranks, refusals and overflow safety."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ntire_bench.results.published import load_metrics_csv
from ntire_bench.scoring.leaderboard import ScoringError, score_results

from support.factory import DEVICE, RECORDED, SETTINGS, T, V, load, make_result, rlfn, write_results


def row(board, name: str) -> dict:
    return board.table.set_index("submission").loc[name].to_dict()


# ------------------------------------------------------------------------------ scores


def test_baseline_scores_exp2_on_every_score():
    board = score_results([rlfn(), make_result("other", psnr={V: 27.0, T: 27.1}, runtime=5.0)], edition="ntire2024")
    base = row(board, "rlfn")
    for column in ("score", "score_runtime", "score_flops", "score_params"):
        assert round(base[column], 4) == 7.3891
    assert base["eligible"]


def test_hand_computed_scores_for_two_entries():
    fast = make_result("fast", psnr={V: 27.0, T: 27.0}, runtime=5.0, flops=10e9, params=150_000)
    slow = make_result("slow", psnr={V: 27.0, T: 27.0}, runtime=12.0, flops=30e9, params=200_000)
    board = score_results([rlfn(), fast, slow], edition="ntire2024")

    assert row(board, "fast")["score"] == pytest.approx(0.7 * math.exp(1) + 0.15 * math.exp(1) + 0.15 * math.exp(1))
    s_rt, s_fl, s_pa = math.exp(2 * 12 / 10), math.exp(2 * 30 / 20), math.exp(2 * 0.2 / 0.3)
    got = row(board, "slow")
    assert (got["score_runtime"], got["score_flops"], got["score_params"]) == pytest.approx((s_rt, s_fl, s_pa))
    assert got["score"] == pytest.approx(0.7 * s_rt + 0.15 * s_fl + 0.15 * s_pa)
    assert board.table["submission"].tolist() == ["fast", "rlfn", "slow"]
    assert board.table["rank"].tolist() == [1, 2, 3]


def test_metrics_csv_with_the_ntire2024_report_baseline_row(tmp_path):
    csv_file = tmp_path / "ntire2024.csv"
    csv_file.write_text("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\n"
                        "RLFN,26.96,27.07,11.77,0.317,19.67\n"
                        "fastnet,26.92,27.01,5.885,0.1585,9.835\n")
    board = score_results(load_metrics_csv(csv_file), edition="ntire2024")
    assert board.baseline == "RLFN"
    assert round(row(board, "RLFN")["score"], 3) == 7.389
    assert row(board, "RLFN")["eligible"]
    # Half of everything: exp(1) on each score.
    assert row(board, "fastnet")["score"] == pytest.approx(math.e)
    assert board.thresholds == {V: 26.90, T: 26.99}


def test_the_edition_scores_the_mean_of_valid_and_test_like_the_organisers_ave_time():
    # test_demo.py's results.txt ranks by "Ave Time" = (valid average + test average) / 2.
    base = rlfn(runtime={V: 10.0, T: 30.0})
    entry = make_result("x", psnr={V: 27.0, T: 27.0}, runtime={V: 5.0, T: 15.0})
    board = score_results([base, entry], edition="ntire2024")
    assert row(board, "x")["runtime_ms"] == 10.0
    assert row(board, "x")["baseline_runtime_ms"] == 20.0
    assert row(board, "x")["score_runtime"] == pytest.approx(math.exp(1))
    assert board.runtime_rule == f"mean of runtime_ms.mean on {V} and {T}"


def test_the_organisers_results_txt_ave_time_is_what_ntire2024_scores(shared_dir):
    path = shared_dir / "ntire2024_esr" / "results.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    official = json.loads(path.read_text())["00_RLFN_baseline"]
    valid, test = official["valid_ave_runtime"], official["test_ave_runtime"]
    base = rlfn(runtime={V: valid, T: test})
    board = score_results([base], edition="ntire2024")
    # results.txt prints Ave Time 12.21 for RLFN.
    assert f"{row(board, 'rlfn')['runtime_ms']:3.2f}" == "12.21"


def test_ntire2025_and_ntire2026_average_valid_and_test_too():
    for edition, baseline in (("ntire2025", "efdn"), ("ntire2026", "span")):
        base = make_result(baseline, psnr={V: 27.0, T: 27.1}, runtime={V: 8.0, T: 12.0})
        board = score_results([base], edition=edition)
        assert row(board, baseline)["runtime_ms"] == 10.0


def test_without_runtime_dataset_the_image_weighted_mean_over_shared_datasets_is_scored():
    counts = {"Set5": 5, "Set14": 14, "B100": 100}
    base = make_result("rlfn", psnr={"Set5": 30.0, "Set14": 27.0}, runtime={"Set5": 10.0, "Set14": 20.0},
                       num_images=counts, thresholds={})
    # B100 is not shared with the baseline, so it does not count.
    entry = make_result("x", psnr={"Set5": 30.0, "Set14": 27.0, "B100": 26.0},
                        runtime={"Set5": 4.0, "Set14": 8.0, "B100": 1000.0}, num_images=counts, thresholds={})
    board = score_results([base, entry])
    own, baseline = (5 * 4 + 14 * 8) / 19, (5 * 10 + 14 * 20) / 19
    assert row(board, "x")["runtime_ms"] == pytest.approx(own)
    assert row(board, "x")["score_runtime"] == pytest.approx(math.exp(2 * own / baseline))
    assert round(row(board, "rlfn")["score"], 4) == 7.3891


# -------------------------------------------------------------------------- eligibility


def test_valid_passes_but_test_fails():
    entry = make_result("x", psnr={V: 26.95, T: 26.98})
    board = score_results([rlfn(), entry], edition="ntire2024")
    got = row(board, "x")
    assert not got["eligible"] and pd.isna(got["rank"])
    assert got["reason"] == f"PSNR 26.98 dB on {T} is below the 26.99 dB threshold"


def test_a_near_miss_is_shown_with_enough_decimals():
    board = score_results([rlfn(), make_result("x", psnr={V: 26.8999, T: 27.0})], edition="ntire2024")
    assert row(board, "x")["reason"] == f"PSNR 26.8999 dB on {V} is below the 26.90 dB threshold"


def test_missing_test_set_is_ineligible():
    board = score_results([rlfn(), make_result("x", psnr={V: 27.5})], edition="ntire2024")
    assert row(board, "x")["reason"] == f"not evaluated on {T}"
    assert not row(board, "x")["eligible"]


def test_ties_share_the_rank_and_the_next_rank_is_skipped():
    twin_a = make_result("twin_a", psnr={V: 27.0, T: 27.0}, runtime=8.0)
    twin_b = make_result("twin_b", psnr={V: 26.95, T: 27.1}, runtime=8.0)
    board = score_results([rlfn(), twin_a, twin_b], edition="ntire2024")
    assert row(board, "twin_a")["rank"] == row(board, "twin_b")["rank"] == 1
    assert row(board, "rlfn")["rank"] == 3
    for track in ("rank_runtime", "rank_flops", "rank_params"):
        assert row(board, "twin_a")[track] == row(board, "twin_b")[track] == 1
    # Equal FLOPs and params for all three: one sub-rank each.
    assert row(board, "rlfn")["rank_flops"] == 1


@pytest.mark.parametrize("record, reason", [
    (make_result("x", status="failed", params=None, flops=None, error="RuntimeError: size mismatch"),
     "failed: RuntimeError: size mismatch"),
    (make_result("x", psnr={V: 12.0, T: 12.0}, status="no_weights", error="checkpoint x.pth not found"),
     "no weights: checkpoint x.pth not found"),
    (make_result("x", psnr={V: 24.5, T: 24.6}, runtime=0.4, params=0, flops=0, reference=True),
     "reference (listed, never ranked)"),
])
def test_failed_no_weights_and_reference_are_listed_never_ranked(record, reason):
    board = score_results([rlfn(), record], edition="ntire2024")
    got = row(board, "x")
    assert not got["eligible"] and got["reason"] == reason
    assert board.table["submission"].tolist() == ["rlfn", "x"]
    assert board.ranked["submission"].tolist() == ["rlfn"]


def test_ineligible_rows_come_below_ranked_ones_even_with_better_scores():
    quick = make_result("quick", psnr={V: 26.0, T: 26.0}, runtime=1.0)
    board = score_results([quick, rlfn()], edition="ntire2024")
    assert board.table["submission"].tolist() == ["rlfn", "quick"]
    assert row(board, "quick")["score"] < row(board, "rlfn")["score"]


def test_baseline_without_weights_still_normalises_the_scores():
    base = rlfn(status="no_weights", psnr={V: 10.0, T: 10.0}, error="checkpoint not found")
    entry = make_result("x", psnr={V: 27.0, T: 27.0}, runtime=5.0, flops=10e9, params=150_000)
    board = score_results([base, entry], edition="ntire2024")
    assert row(board, "x")["score"] == pytest.approx(math.e)
    assert row(board, "x")["rank"] == 1 and not row(board, "rlfn")["eligible"]


def test_threshold_overrides_add_and_replace():
    entry = make_result("x", psnr={V: 26.95, T: 27.0, "Set5": 30.0})
    board = score_results([rlfn(psnr={V: 26.96, T: 27.07, "Set5": 31.0}), entry], edition="ntire2024",
                          thresholds={V: 26.96, "Set5": 30.5})
    assert board.thresholds == {V: 26.96, T: 26.99, "Set5": 30.5}
    assert row(board, "x")["reason"] == (f"PSNR 26.95 dB on {V} is below the 26.96 dB threshold; "
                                         "PSNR 30.00 dB on Set5 is below the 30.50 dB threshold")


def test_default_edition_takes_thresholds_recorded_in_the_results():
    on_set5 = [make_result(n, psnr={"Set5": p}, thresholds={}) for n, p in (("rlfn", 30.2), ("low", 20.0))]
    board = score_results(on_set5)
    assert board.thresholds == {} and board.table["eligible"].all()

    board = score_results([rlfn(), make_result("x", psnr={V: 26.5, T: 27.0})])
    assert board.thresholds == RECORDED
    assert not row(board, "x")["eligible"]


def test_conflicting_recorded_thresholds_are_refused():
    other = make_result("x", psnr={V: 27.0}, thresholds={V: 27.5})
    with pytest.raises(ScoringError, match=f"disagree on the {V} threshold.*pass --threshold {V}=DB"):
        score_results([rlfn(), other])
    assert score_results([rlfn(), other], thresholds={V: 27.2}).thresholds == {V: 27.2, T: 26.99}


# ---------------------------------------------------------------------------- refusals


def test_mixed_devices_are_refused_naming_files_and_devices(tmp_path):
    write_results(tmp_path, [rlfn(), make_result("x", psnr={V: 27.0, T: 27.0}, device="NVIDIA A100-SXM4-80GB")])
    results = load(tmp_path)
    with pytest.raises(ScoringError) as info:
        score_results(results, edition="ntire2024")
    message = str(info.value)
    assert "different devices" in message and "x.json" in message and "rlfn.json" in message
    assert DEVICE in message and "A100" in message and "\n" not in message


def test_missing_baseline_is_refused_with_a_hint():
    with pytest.raises(ScoringError, match=r"baseline 'rlfn' is not among the results .*did you mean 'rlfm'"):
        score_results([make_result("rlfm", psnr={V: 27.0, T: 27.0})], edition="ntire2024")


def test_edition_runtime_dataset_falls_back_to_shared_datasets_and_says_so():
    base = make_result("rlfn", psnr={"Set5": 30.0}, runtime=10.0)
    fast = make_result("fast", psnr={"Set5": 30.0}, runtime=5.0, params=300_000, flops=20e9)
    board = score_results([base, fast], edition="ntire2024")
    assert f"the baseline was not measured on {V}" in board.runtime_rule
    row = board.table.set_index("submission").loc["fast"]
    assert row["score_runtime"] == pytest.approx(math.exp(2 * 5.0 / 10.0))
    assert not row["eligible"] and f"not evaluated on {V}" in row["reason"]


def test_baseline_without_any_runtime_is_refused():
    base = make_result("rlfn", psnr={})
    with pytest.raises(ScoringError, match="baseline 'rlfn' has no measured runtime"):
        score_results([base], edition="ntire2024")


def test_duplicate_submissions_are_refused():
    with pytest.raises(ScoringError, match="appears more than once"):
        score_results([rlfn(), rlfn()])


def test_a_failed_or_unfinished_baseline_cannot_normalise():
    for status, words in (("failed", "failed: boom"), ("running", "unfinished")):
        base = rlfn(status=status, error="boom" if status == "failed" else None)
        with pytest.raises(ScoringError, match=f"baseline 'rlfn' cannot normalise the scores: {words}"):
            score_results([base, make_result("x", psnr={V: 27.0, T: 27.0})], edition="ntire2024")


def test_an_unfinished_result_is_listed_never_ranked():
    partial = make_result("partial", psnr={V: 27.5}, status="running", runtime=1.0)
    board = score_results([rlfn(), partial])  # default edition: no threshold would stop it
    assert not row(board, "partial")["eligible"]
    assert row(board, "partial")["reason"].startswith("unfinished")


def test_results_measured_with_other_settings_or_code_are_refused():
    other = make_result("x", psnr={V: 27.0, T: 27.0}, settings=SETTINGS.__class__(**{**SETTINGS.__dict__,
                                                                                     "repeats": 3}))
    with pytest.raises(ScoringError, match=r"measured differently \(repeats 20 in .*, 3 in .*\)"):
        score_results([rlfn(), other])
    newer = make_result("y", psnr={V: 27.0, T: 27.0}, fingerprint="0" * 64)
    with pytest.raises(ScoringError, match="harness code ffffffffffff in .*, 000000000000 in"):
        score_results([rlfn(), newer])
    # Published figures carry no settings and are scored with anything.
    assert len(score_results([rlfn(), make_result("z", psnr={V: 27.0, T: 27.0}, settings=None)]).table) == 2


def test_a_runtime_hundreds_of_times_the_baseline_scores_without_overflow(tmp_path):
    from ntire_bench import report

    slow = make_result("slow", psnr={V: 27.0, T: 27.0}, runtime=10.0 * 400)  # exp(800) overflows a float
    board = score_results([rlfn(), slow], edition="ntire2024")
    got = row(board, "slow")
    # ln(0.7 e^800 + 0.3 e^2) = ln(0.7) + 800 to far below float precision
    assert math.isinf(got["score"]) and got["score_log10"] == pytest.approx((math.log(0.7) + 800) / math.log(10))
    assert got["rank"] == 2
    assert "e+" in report.format_table(board)
    paths = report.write_leaderboard(board, tmp_path)
    data = json.loads(paths["json"].read_text())  # strict JSON: no bare Infinity tokens
    assert "Infinity" not in paths["json"].read_text().replace('"Infinity"', "")
    assert [r["score"] for r in data["rows"] if r["submission"] == "slow"] == ["Infinity"]


def test_the_legend_shows_the_baseline_runtime_each_row_was_divided_by():
    counts = {"Set5": 5, "Set14": 14}
    base = make_result("rlfn", psnr={"Set5": 30.0, "Set14": 27.0}, runtime={"Set5": 10.0, "Set14": 20.0},
                       num_images=counts, thresholds={})
    only5 = make_result("a", psnr={"Set5": 30.0}, runtime={"Set5": 4.0}, num_images=counts, thresholds={})
    both = make_result("b", psnr={"Set5": 30.0, "Set14": 27.0}, runtime=5.0, num_images=counts, thresholds={})
    board = score_results([base, only5, both])
    assert row(board, "a")["baseline_runtime_ms"] == 10.0
    assert row(board, "b")["baseline_runtime_ms"] == pytest.approx((5 * 10 + 14 * 20) / 19)
    assert board.baseline_metrics["runtime_ms"] is None and "differs by row" in board.notes[0]


