"""Scoring: editions, per-metric scores, the runtime rule, eligibility, ranks and the gate check.

``make_result`` and ``write_results`` build fake-but-valid results files; the report and
CLI tests import them from here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ntire_bench import scoring
from ntire_bench.scoring import ScoringError, load_edition, score_results

V, T = "DIV2K_LSDIR_valid", "DIV2K_LSDIR_test"
DEVICE = "NVIDIA GeForce RTX 3090"
RECORDED = {V: 26.90, T: 26.99}  # what datasets.yaml records for the NTIRE sets


def make_result(name: str, psnr: dict[str, float] | None = None, runtime: float | dict[str, float] = 10.0,
                params: float | None = 300_000, flops: float | None = 20e9, status: str = "ok",
                reference: bool = False, error: str | None = None, device: str = DEVICE,
                num_images: dict[str, int] | None = None, thresholds: dict[str, float] | None = None) -> dict:
    """One results record in the docs/results-format.md shape; ``psnr`` maps dataset -> dB."""
    thresholds = RECORDED if thresholds is None else thresholds
    datasets = {}
    for dataset, value in (psnr or {}).items():
        mean = runtime[dataset] if isinstance(runtime, dict) else runtime
        datasets[dataset] = {
            "psnr": value, "psnr_y": value + 1.4, "ssim": 0.80, "ssim_y": 0.82,
            "threshold": thresholds.get(dataset),
            "num_images": (num_images or {}).get(dataset, 100),
            "runtime_ms": {"mean": mean, "median": mean, "min": mean * 0.9, "max": mean * 1.1, "std": 0.1,
                           "runs": [mean], "run_cv": None},
            "peak_memory_mb": None,
        }
    return {
        "schema": "ntire-bench/results/v1", "submission": name, "team": "test", "status": status, "error": error,
        "reference": reference, "data_range": 1.0, "params": params, "flops": flops,
        "datasets": datasets,
        "environment": {"harness_version": "0.1.0", "git_commit": "abc1234", "torch": "2.13.0",
                        "device": "cuda:0", "device_name": device},
        "warnings": [],
    }


def write_results(directory: Path, records: list[dict]) -> Path:
    """Write one ``<submission>.json`` per record into ``directory``; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['submission']}.json").write_text(json.dumps(record))
    return directory


def rlfn(**overrides) -> dict:
    """The baseline: 10 ms, 20 GFLOPs, 0.3 M params, above both NTIRE thresholds."""
    return make_result("rlfn", **{"psnr": {V: 26.96, T: 27.07}, **overrides})


def row(board: scoring.Leaderboard, name: str) -> dict:
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
    board = score_results(scoring.load_metrics_csv(csv_file), edition="ntire2024")
    assert board.baseline == "RLFN"
    assert round(row(board, "RLFN")["score"], 3) == 7.389
    assert row(board, "RLFN")["eligible"]
    # Half of everything: exp(1) on each score.
    assert row(board, "fastnet")["score"] == pytest.approx(math.e)
    assert board.thresholds == {V: 26.90, T: 26.99}


def test_runtime_dataset_of_the_edition_is_the_one_scored():
    base = rlfn(runtime={V: 10.0, T: 40.0})
    entry = make_result("x", psnr={V: 27.0, T: 27.0}, runtime={V: 5.0, T: 1.0})
    board = score_results([base, entry], edition="ntire2024")
    assert row(board, "x")["runtime_ms"] == 5.0
    assert row(board, "x")["score_runtime"] == pytest.approx(math.exp(1))


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
    results, _ = scoring.read_results(tmp_path)
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


# ------------------------------------------------------------------------------ editions


def test_presets_and_did_you_mean():
    assert load_edition(None).name == "default" and load_edition(None).thresholds_from_results
    e2024, e2025 = load_edition("ntire2024"), load_edition("ntire2025")
    assert (e2024.baseline, e2025.baseline) == ("rlfn", "efdn")
    assert dict(e2024.weights) == {"runtime": 0.7, "flops": 0.15, "params": 0.15} == dict(e2025.weights)
    assert dict(e2024.thresholds) == {V: 26.90, T: 26.99} == dict(e2025.thresholds)
    assert e2024.runtime_dataset == V
    assert "3090" in e2024.reference_device and "A6000" in e2025.reference_device
    with pytest.raises(ScoringError, match="unknown edition 'ntire2O24': did you mean 'ntire2024'"):
        load_edition("ntire2O24")


def test_custom_edition_from_yaml(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("baseline: efdn\nweights: {runtime: 1.0, flops: 0, params: 0}\n"
                    "thresholds: {Set5: 30.0}\nruntime_dataset: Set5\n")
    edition = load_edition(path)
    assert (edition.name, edition.baseline, edition.runtime_dataset) == ("mine", "efdn", "Set5")
    base = make_result("efdn", psnr={"Set5": 30.5}, runtime=10.0)
    fast = make_result("fast", psnr={"Set5": 30.1}, runtime=5.0, flops=1e12)
    board = score_results([base, fast], edition=str(path))
    assert row(board, "fast")["score"] == pytest.approx(math.e)  # FLOPs weigh nothing here


@pytest.mark.parametrize("text, message", [
    ("baseline: rlfn\nweights: {runtime: 0.5, flops: 0.15, params: 0.15}\n", "weights must sum to 1"),
    ("baseline: rlfn\nweights: {runtime: 1.0}\n", "field 'weights' must give runtime, flops and params"),
    ("weights: {runtime: 1, flops: 0, params: 0}\n", "field 'baseline'"),
    ("baseline: rlfn\nweights: {runtime: 1, flops: 0, params: 0}\ntreshold: {}\n", "unknown field"),
    ("baseline: [rlfn\n", "not valid YAML at line"),
])
def test_bad_edition_files_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScoringError, match=message) as info:
        load_edition(path)
    assert str(path) in str(info.value)


def test_parse_threshold():
    assert scoring.parse_threshold("DIV2K_LSDIR_valid=26.90") == (V, 26.90)
    for bad in ("26.9", "=26.9", "Set5=abc", "Set5=inf"):
        with pytest.raises(ValueError):
            scoring.parse_threshold(bad)


# --------------------------------------------------------------------------- metrics CSV


@pytest.mark.parametrize("body, message", [
    ("submission,psnr_valid,runtime_ms,params_m,flops_g\nA,27,1,1,1\n", "missing column(s) psnr_test"),
    ("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\nA,27,27,1,1,1\nB,27,abc,1,1,1\n",
     "row 3, column psnr_test: 'abc' is not a valid number"),
    ("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\nA,27,27,-1,1,1\n",
     "row 2, column runtime_ms: '-1'"),
    ("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\n,27,27,1,1,1\n", "row 2, column submission"),
])
def test_bad_metrics_csv_names_file_row_and_column(tmp_path, body, message):
    path = tmp_path / "published.csv"
    path.write_text(body)
    with pytest.raises(ScoringError) as info:
        scoring.load_metrics_csv(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_empty_psnr_cell_means_not_evaluated(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\n"
                    "rlfn,26.96,27.07,11.77,0.317,19.67\nx,27.0,,5,0.1,5\n")
    board = score_results(scoring.load_metrics_csv(path), edition="ntire2024")
    assert row(board, "x")["reason"] == f"not evaluated on {T}"


# ---------------------------------------------------------------------------- the gate


def test_gate_passes_fails_and_reports_failed_runs():
    good = make_result("good", psnr={V: 27.0, T: 27.0})
    assert scoring.check_gate([good, rlfn()], "ntire2024").passed

    low = make_result("low", psnr={V: 26.80, T: 27.0})
    broken = make_result("broken", status="failed", error="ImportError: no module named foo")
    ref = make_result("bicubic", psnr={V: 24.0, T: 24.0}, reference=True)
    verdict = scoring.check_gate([good, low, broken, ref], "ntire2024")
    assert not verdict.passed
    assert [f.line() for f in verdict.failures] == [
        f"FAIL low {V}: PSNR 26.80 dB, threshold 26.90 dB",
        "FAIL broken: failed: ImportError: no module named foo",
    ]
    assert verdict.skipped == [("bicubic", "reference (listed, never ranked)")]


def test_gate_with_nothing_evaluated_is_an_error():
    with pytest.raises(ScoringError, match="nothing to gate"):
        scoring.check_gate([make_result("x", status="no_weights", psnr={V: 10.0})], "ntire2024")


# ---------------------------------------------------------------------------- reading


def test_read_results_sets_aside_bad_files_unless_strict(tmp_path):
    write_results(tmp_path, [rlfn()])
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ScoringError, match="broken.json: not valid JSON"):
        scoring.read_results(tmp_path, strict=True)
    assert (tmp_path / "broken.json").exists()  # the strict reader moves nothing

    results, notes = scoring.read_results(tmp_path)
    assert [r["submission"] for r in results] == ["rlfn"]
    assert len(notes) == 1 and "broken.json" in notes[0]


def test_read_results_refuses_a_missing_or_empty_directory(tmp_path):
    for strict in (False, True):
        with pytest.raises(ScoringError, match="no such results directory"):
            scoring.read_results(tmp_path / "nope", strict=strict)
        with pytest.raises(ScoringError, match="holds no results files"):
            scoring.read_results(tmp_path, strict=strict)


def test_the_custom_edition_documented_in_scoring_md_loads(repo_root, tmp_path):
    text = (repo_root / "docs" / "scoring.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my-edition.yaml"
    path.write_text(block)
    edition = load_edition(path)
    assert (edition.baseline, edition.runtime_dataset, dict(edition.thresholds)) == ("span_ch28", "Set14", {"Set14": 28.0})
