"""Results files: atomic writes, validation, and corrupt files set aside rather than overwritten."""

from __future__ import annotations

import json

import pytest

from ntire_bench.results import (
    SCHEMA,
    ResultsError,
    atomic_write_json,
    load_existing,
    load_results,
    read_results_file,
)


def _record(name: str, status: str = "ok") -> dict:
    return {"schema": SCHEMA, "submission": name, "status": status, "datasets": {}}


def test_atomic_write_roundtrip_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, _record("a") | {"x": float("inf")})
    atomic_write_json(path, _record("a") | {"x": 1})
    assert read_results_file(path)["x"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize(
    "content, reason",
    [("{not json", "not valid JSON"), ('{"hello": 1}', "not an ntire-bench results file"),
     (json.dumps({"schema": SCHEMA, "submission": "x", "status": "weird"}), "'status'")],
)
def test_bad_files_are_rejected_with_the_reason(tmp_path, content, reason):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ResultsError, match=reason):
        read_results_file(path)


def test_corrupt_file_is_set_aside_with_a_warning(tmp_path):
    path = tmp_path / "sub.json"
    path.write_text('{"schema": "ntire-bench/results/v1", "submission": "sub", "sta')  # truncated
    with pytest.warns(UserWarning, match="not valid JSON.*moved it to sub.json.bad-"):
        assert load_existing(path) is None
    assert not path.exists()
    aside = list(tmp_path.glob("sub.json.bad-*"))
    assert len(aside) == 1 and aside[0].read_text().endswith('"sta')


def test_load_results_sorts_and_skips_foreign(tmp_path):
    atomic_write_json(tmp_path / "b.json", _record("b"))
    atomic_write_json(tmp_path / "a.json", _record("a", "failed"))
    (tmp_path / "notes.json").write_text("[1, 2]")
    with pytest.warns(UserWarning, match="notes.json"):
        loaded = load_results(tmp_path)
    assert [r["submission"] for r in loaded] == ["a", "b"]


def test_missing_or_empty_results_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ResultsError, match="no such results directory"):
        load_results(tmp_path / "nope")
    with pytest.raises(ResultsError, match="holds no results files"):
        load_results(tmp_path)


def test_strict_loading_raises_and_moves_nothing(tmp_path):
    atomic_write_json(tmp_path / "a.json", _record("a"))
    (tmp_path / "b.json").write_text("{broken")
    with pytest.raises(ResultsError, match="b.json: not valid JSON.*re-run that submission or remove the file"):
        load_results(tmp_path, strict=True)
    assert (tmp_path / "b.json").exists() and not list(tmp_path.glob("*.bad-*"))
