"""Score intervals on the leaderboard: propagation by hand, ties within noise, sub-tracks, overflow, the writers."""

from __future__ import annotations

import csv
import json
import math

import pandas as pd
import pytest

from ntire_bench import report
from ntire_bench.report import format as report_format
from ntire_bench.results.records import ImageResult, SampleStats
from ntire_bench.scoring.leaderboard import INTERVAL_COLUMNS, LEADERBOARD_COLUMNS, ScoringError, score_results

from support.factory import T, V, make_result, rlfn

E2 = math.exp(2)
PSNR = {V: 27.0, T: 27.1}


def row(board, name: str) -> dict:
    return board.table.set_index("submission").loc[name].to_dict()


def entry(name: str, runtime: float, interval: float | None, **kwargs):
    return make_result(name, psnr=PSNR, runtime=runtime, interval=interval, **kwargs)


# ------------------------------------------------------------------- propagation


def test_runtime_interval_to_runtime_score_to_final_score_by_hand():
    board = score_results([rlfn(interval=0.5), entry("a", 8.0, 0.4)], edition="ntire2024")
    a = row(board, "a")
    assert (a["runtime_ms_low"], a["runtime_ms_high"]) == pytest.approx((7.6, 8.4))
    assert (a["baseline_runtime_ms_low"], a["baseline_runtime_ms_high"]) == pytest.approx((9.5, 10.5))
    # Displayed: the lowest runtime over the highest baseline, the highest over the lowest.
    low_rt, high_rt = math.exp(2 * 7.6 / 10.5), math.exp(2 * 8.4 / 9.5)
    assert (a["score_runtime_low"], a["score_runtime_high"]) == pytest.approx((low_rt, high_rt))
    # FLOPs and params equal the baseline's: exact exp(2) each, weight 0.15 + 0.15.
    assert (a["score_low"], a["score_high"]) == pytest.approx((0.7 * low_rt + 0.3 * E2, 0.7 * high_rt + 0.3 * E2))
    assert a["score_log10_low"] == pytest.approx(math.log10(0.7 * low_rt + 0.3 * E2))
    assert a["score_log10_high"] == pytest.approx(math.log10(0.7 * high_rt + 0.3 * E2))
    # For ties: the baseline's runtime held at its measured 10 ms.
    assert (a["score_rel_low"], a["score_rel_high"]) == pytest.approx(
        (0.7 * math.exp(2 * 7.6 / 10) + 0.3 * E2, 0.7 * math.exp(2 * 8.4 / 10) + 0.3 * E2))
    assert a["score_low"] <= a["score_rel_low"] <= a["score"] <= a["score_rel_high"] <= a["score_high"]


def test_the_baseline_scores_exactly_exp2_but_competes_with_its_own_noise():
    board = score_results([rlfn(interval=0.5), entry("a", 10.4, 0.2)], edition="ntire2024")
    base = row(board, "rlfn")
    assert base["score_low"] == pytest.approx(E2) and base["score_high"] == pytest.approx(E2)
    assert base["score_runtime_low"] == base["score_runtime_high"] == pytest.approx(E2)
    assert (base["score_rel_low"], base["score_rel_high"]) == pytest.approx(
        (0.7 * math.exp(2 * 9.5 / 10) + 0.3 * E2, 0.7 * math.exp(2 * 10.5 / 10) + 0.3 * E2))
    # a (10.2-10.6 ms) overlaps the baseline's own 9.5-10.5 ms: the two are within noise.
    assert base["within_noise"] and row(board, "a")["within_noise"]
    assert board.baseline_metrics["runtime_ms_low"] == pytest.approx(9.5)
    assert report_format.fmt_score_interval(board.table[board.table["submission"] == "rlfn"].iloc[0]) == "exact"


def test_valid_and_test_intervals_average_as_the_mean_of_their_bounds():
    a = make_result("a", psnr=PSNR, runtime={V: 8.0, T: 12.0})
    a.datasets[V].runtime_ms.ci_low, a.datasets[V].runtime_ms.ci_high = 7.5, 8.2
    a.datasets[T].runtime_ms.ci_low, a.datasets[T].runtime_ms.ci_high = 11.0, 12.9
    board = score_results([rlfn(), a], edition="ntire2024")
    got = row(board, "a")
    assert got["runtime_ms"] == 10.0
    assert (got["runtime_ms_low"], got["runtime_ms_high"]) == pytest.approx(((7.5 + 11.0) / 2, (8.2 + 12.9) / 2))
    # The baseline recorded no interval: its runtime counts as exact, and the board says so.
    assert math.isnan(got["baseline_runtime_ms_low"])
    assert got["score_runtime_high"] == pytest.approx(math.exp(2 * 10.55 / 10))
    assert any("records no runtime interval" in note for note in board.notes)


def test_shared_datasets_weigh_each_bound_by_the_submissions_image_counts():
    counts = {"Set5": 5, "Set14": 14}
    base = make_result("rlfn", psnr={"Set5": 30.0, "Set14": 27.0}, runtime={"Set5": 10.0, "Set14": 20.0},
                       num_images=counts, thresholds={}, interval=1.0)
    mine = make_result("a", psnr={"Set5": 30.0, "Set14": 27.0}, runtime={"Set5": 4.0, "Set14": 10.0},
                       num_images=counts, thresholds={})
    mine.datasets["Set5"].runtime_ms.ci_low, mine.datasets["Set5"].runtime_ms.ci_high = 3.8, 4.4
    mine.datasets["Set14"].runtime_ms.ci_low, mine.datasets["Set14"].runtime_ms.ci_high = 9.0, 10.5
    got = row(score_results([base, mine]), "a")
    assert (got["runtime_ms_low"], got["runtime_ms_high"]) == pytest.approx(
        ((5 * 3.8 + 14 * 9.0) / 19, (5 * 4.4 + 14 * 10.5) / 19))
    assert (got["baseline_runtime_ms_low"], got["baseline_runtime_ms_high"]) == pytest.approx(
        ((5 * 9 + 14 * 19) / 19, (5 * 11 + 14 * 21) / 19))


# ------------------------------------------------------------------------ ties


def test_two_submissions_closer_than_their_noise_are_flagged_within_noise():
    board = score_results([rlfn(interval=0.3), entry("a", 8.0, 0.3), entry("b", 8.2, 0.3)], edition="ntire2024")
    a, b, base = row(board, "a"), row(board, "b"), row(board, "rlfn")
    assert (a["rank"], b["rank"], base["rank"]) == (1, 2, 3)  # ranks still follow the scores
    assert a["within_noise"] and b["within_noise"] and a["tie_group"] == b["tie_group"] == 1
    assert not base["within_noise"] and base["tie_group"] == 2
    assert a["within_noise_runtime"] and b["within_noise_runtime"]
    assert "≈1–2" in report.to_markdown(board) and "≈1–2" in report.format_table(board)


def test_two_submissions_far_apart_compared_with_their_noise_are_not_flagged():
    board = score_results([rlfn(interval=0.3), entry("a", 6.0, 0.1), entry("b", 8.0, 0.1)], edition="ntire2024")
    assert board.table["within_noise"].tolist() == [False, False, False]
    assert board.table["tie_group"].tolist() == [1, 2, 3]
    assert "≈" not in report.to_markdown(board).split("| Rank |")[1]


def test_the_baseline_noise_shared_by_every_row_does_not_make_ties():
    # Displayed intervals overlap through the baseline's wide interval; with it held fixed they do not.
    board = score_results([rlfn(interval=1.0), entry("a", 6.0, 0.1), entry("b", 6.5, 0.1)], edition="ntire2024")
    a, b = row(board, "a"), row(board, "b")
    assert a["score_high"] > b["score_low"]
    assert a["score_rel_high"] < b["score_rel_low"]
    assert not a["within_noise"] and not b["within_noise"]


def test_a_chain_of_overlaps_is_one_group_spanning_its_ranks():
    board = score_results([rlfn(interval=0.1), entry("a", 7.0, 0.3), entry("b", 7.5, 0.3), entry("c", 8.0, 0.3)],
                          edition="ntire2024")
    assert board.table["tie_group"].tolist() == [1, 1, 1, 2]  # a~b and b~c, though a and c do not overlap
    assert report_format.noise_spans(board) == {1: (1, 3)}
    assert "≈1–3" in report.format_table(board)


def test_runtime_sub_track_ties_on_its_own_scores():
    # Same runtime within noise, FLOPs far apart: a tie on the runtime track only.
    board = score_results([rlfn(interval=0.2), entry("lean", 8.0, 0.3, flops=10e9),
                           entry("heavy", 8.1, 0.3, flops=40e9)], edition="ntire2024")
    lean, heavy = row(board, "lean"), row(board, "heavy")
    assert not lean["within_noise"] and not heavy["within_noise"]
    assert lean["within_noise_runtime"] and heavy["within_noise_runtime"]
    assert lean["tie_group_runtime"] == heavy["tie_group_runtime"] == 1
    assert (lean["rank_runtime"], heavy["rank_runtime"]) == (1, 2)
    markdown = report.to_markdown(board)
    assert "(1 ≈1–2)" in markdown and "(2 ≈1–2)" in markdown


def test_rows_without_an_interval_show_none_and_are_never_flagged():
    board = score_results([rlfn(), entry("a", 8.0, None), entry("b", 8.0, None)], edition="ntire2024")
    assert board.table["within_noise"].isna().all() and board.table["tie_group"].isna().all()
    assert board.table["score_low"].isna().all() and board.intervals is None
    assert "Score interval" not in report.to_markdown(board) and "score interval" not in report.format_table(board)
    # One row measured with intervals among rows without: compared with nobody, so not flagged.
    mixed = score_results([rlfn(), entry("a", 8.0, 0.5), entry("b", 8.0, None)], edition="ntire2024")
    assert not row(mixed, "a")["within_noise"] and pd.isna(row(mixed, "b")["within_noise"])


def test_unranked_rows_show_their_interval_but_join_no_group():
    low_psnr = make_result("blurry", psnr={V: 26.0, T: 26.1}, runtime=8.0, interval=0.3)
    board = score_results([rlfn(interval=0.3), entry("a", 8.0, 0.3), low_psnr], edition="ntire2024")
    blurry = row(board, "blurry")
    assert not blurry["eligible"] and blurry["score_low"] < blurry["score"] < blurry["score_high"]
    assert pd.isna(blurry["tie_group"]) and pd.isna(blurry["within_noise"])
    assert not row(board, "a")["within_noise"]


def test_one_sample_per_image_measures_no_noise_so_no_interval_is_used():
    single = entry("a", 8.0, 0.0)
    single.datasets[V].images = [ImageResult("x", runtime_ms=SampleStats(8.0, 8.0, 8.0, 8.0, 0.0, None, 1))]
    single.datasets[T].images = [ImageResult("x", runtime_ms=SampleStats(8.0, 8.0, 8.0, 8.0, 0.0, None, 1))]
    got = row(score_results([rlfn(interval=0.3), single], edition="ntire2024"), "a")
    assert math.isnan(got["runtime_ms_low"]) and math.isnan(got["score_low"])


# ---------------------------------------------------------------------- overflow


def test_intervals_of_scores_beyond_float_range_stay_comparable():
    # 400x and 500x the baseline: exp(800) and exp(1000) overflow, their logs do not.
    board = score_results([rlfn(interval=0.1), entry("slow", 4000.0, 10.0), entry("slower", 5000.0, 10.0)],
                          edition="ntire2024")
    slow, slower = row(board, "slow"), row(board, "slower")
    assert math.isinf(slow["score_high"]) and math.isinf(slower["score_low"])
    assert slow["score_log10_high"] == pytest.approx((math.log(0.7) + 2 * 4010 / 9.9) / math.log(10))
    assert slow["score_log10_high"] < slower["score_log10_low"]
    assert not slow["within_noise"] and not slower["within_noise"]
    assert [slow["rank"], slower["rank"]] == [2, 3]
    assert "e+" in report_format.fmt_score_interval(board.table.iloc[1])


# ------------------------------------------------------------------------ writers


@pytest.fixture(scope="module")
def noisy_board():
    return score_results([rlfn(interval=0.3), entry("a", 8.0, 0.3), entry("b", 8.2, 0.3), entry("c", 5.0, 0.1),
                          make_result("blurry", psnr={V: 26.0, T: 26.1}, runtime=4.0, interval=0.1),
                          make_result("old", psnr=PSNR, runtime=9.0)], edition="ntire2024")


def test_csv_carries_every_interval_column_as_numbers(noisy_board, tmp_path):
    with report.write_leaderboard(noisy_board, tmp_path)["csv"].open() as handle:
        rows = {r["submission"]: r for r in csv.DictReader(handle)}
    assert set(INTERVAL_COLUMNS) <= set(LEADERBOARD_COLUMNS) <= set(rows["a"])
    a = rows["a"]
    assert float(a["runtime_ms_low"]) == pytest.approx(7.7) and float(a["score_low"]) < float(a["score"])
    assert (a["tie_group"], a["within_noise"], rows["c"]["within_noise"]) == ("2", "True", "False")
    assert rows["old"]["score_low"] == "" and rows["old"]["within_noise"] == ""  # no interval, never flagged
    assert rows["blurry"]["score_low"] != "" and rows["blurry"]["tie_group"] == ""


def test_json_is_strict_with_intervals_as_numbers(noisy_board, tmp_path):
    text = report.write_leaderboard(noisy_board, tmp_path)["json"].read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in strict JSON"))
    rows = {r["submission"]: r for r in data["rows"]}
    assert isinstance(rows["a"]["score_low"], float) and rows["a"]["within_noise"] is True
    assert rows["c"]["within_noise"] is False and rows["old"]["within_noise"] is None
    assert rows["old"]["score_high"] is None and rows["a"]["tie_group"] == 2
    assert data["metadata"]["intervals"]["confidence"] == 0.95
    assert data["metadata"]["baseline_metrics"]["runtime_ms_high"] == pytest.approx(10.3)


def test_markdown_shows_the_interval_marker_and_legend(noisy_board):
    text = report.to_markdown(noisy_board)
    assert "Score intervals carry the 95% confidence intervals" in text and "Ranks still follow the scores" in text
    a_line = next(line for line in text.splitlines() if line.startswith("| 2 | a |"))
    low, high = (0.7 * math.exp(2 * 7.7 / 10.3) + 0.3 * E2, 0.7 * math.exp(2 * 8.3 / 9.7) + 0.3 * E2)
    assert f"| [{low:.4f}, {high:.4f}] | ≈2–3 | 8.00 [7.70, 8.30] |" in a_line
    base_line = next(line for line in text.splitlines() if "**rlfn**" in line)
    assert "| exact |" in base_line


def test_html_shows_intervals_tie_badges_bands_and_the_legend(noisy_board, tmp_path):
    text = report.write_leaderboard(noisy_board, tmp_path)["html"].read_text()
    assert text.count('class="tie"') >= 4  # a and b on the main and the runtime track, plus the legend's
    assert 'class="rank band-a"' in text and "≈2–3" in text
    assert '<span class="ci">7.70 – 8.30</span>' in text
    assert "cannot be told apart" in text and "runtime 95% interval" in text  # legend; error bars on the plot
    assert text.count('<tr class="') == len(noisy_board.table)


def test_terminal_table_adds_the_interval_and_marker_columns(noisy_board):
    lines = report.format_table(noisy_board).splitlines()
    assert "score interval" in lines[1] and "noise" in lines[1]
    assert lines[3].split()[:5][0:2] == ["2", "a"] and "≈2–3" in lines[3]
    assert lines[-1].startswith("≈a–b")


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize("low, high", [(8.5, 9.0), (7.0, 7.5), (-1.0, 9.0), (7.0, None), (7.0, math.inf)])
def test_an_interval_that_does_not_hold_its_runtime_is_refused_naming_the_field(low, high):
    bad = entry("a", 8.0, None)
    bad.datasets[V].runtime_ms.ci_low, bad.datasets[V].runtime_ms.ci_high = low, high
    with pytest.raises(ScoringError, match=rf"submission 'a'.*datasets\.{V}\.runtime_ms interval"):
        score_results([rlfn(), bad], edition="ntire2024")


def test_a_bad_interval_on_a_dataset_that_is_not_scored_does_not_block_the_board():
    extra = "Set5"  # measured, but not one of the edition's runtime datasets
    bad = make_result("a", psnr={**PSNR, extra: 30.0}, runtime=8.0, interval=0.2)
    bad.datasets[extra].runtime_ms.ci_low, bad.datasets[extra].runtime_ms.ci_high = 9.0, 9.5
    row = score_results([rlfn(), bad], edition="ntire2024").table.set_index("submission").loc["a"]
    assert row["runtime_ms_low"] == pytest.approx(7.8) and row["runtime_ms_high"] == pytest.approx(8.2)
