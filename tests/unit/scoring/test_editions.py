"""Editions (presets and YAML) and PSNR thresholds."""

from __future__ import annotations

import math

import pytest

from ntire_bench.scoring.editions import EditionError, load_edition, parse_threshold
from ntire_bench.scoring.leaderboard import score_results

from support.factory import T, V, make_result


def row(board, name: str) -> dict:
    return board.table.set_index("submission").loc[name].to_dict()


# ------------------------------------------------------------------------------ editions


def test_presets_and_did_you_mean():
    assert load_edition(None).name == "default" and load_edition(None).thresholds_from_results
    e2024, e2025 = load_edition("ntire2024"), load_edition("ntire2025")
    assert (e2024.baseline, e2025.baseline) == ("rlfn", "efdn")
    assert dict(e2024.weights) == {"runtime": 0.7, "flops": 0.15, "params": 0.15} == dict(e2025.weights)
    assert dict(e2024.thresholds) == {V: 26.90, T: 26.99} == dict(e2025.thresholds)
    assert e2024.runtime_datasets == (V, T) == e2025.runtime_datasets
    assert "3090" in e2024.reference_device and "A6000" in e2025.reference_device
    e2026 = load_edition("ntire2026")
    assert (e2026.baseline, dict(e2026.weights), e2026.runs) == ("span", {"runtime": 0.8, "flops": 0.1, "params": 0.1}, 5)
    assert dict(e2026.thresholds) == {V: 26.90, T: 26.99} and e2026.runtime_datasets == (V, T)
    assert "A6000" in e2026.reference_device
    with pytest.raises(EditionError, match="unknown edition 'ntire2O24': did you mean 'ntire2024'"):
        load_edition("ntire2O24")


def test_custom_edition_from_yaml(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("baseline: efdn\nweights: {runtime: 1.0, flops: 0, params: 0}\n"
                    "thresholds: {Set5: 30.0}\nruntime_dataset: Set5\n")
    edition = load_edition(path)
    assert (edition.name, edition.baseline, edition.runtime_datasets) == ("mine", "efdn", ("Set5",))
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
    with pytest.raises(EditionError, match=message) as info:
        load_edition(path)
    assert str(path) in str(info.value)


def test_parse_threshold():
    assert parse_threshold("DIV2K_LSDIR_valid=26.90") == (V, 26.90)
    for bad in ("26.9", "=26.9", "Set5=abc", "Set5=inf"):
        with pytest.raises(ValueError):
            parse_threshold(bad)




def test_the_custom_edition_documented_in_scoring_md_loads(repo_root, tmp_path):
    text = (repo_root / "docs" / "scoring.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my-edition.yaml"
    path.write_text(block)
    edition = load_edition(path)
    assert (edition.baseline, edition.runtime_datasets, dict(edition.thresholds)) == ("span_ch28", ("Set14",),
                                                                                     {"Set14": 28.0})
