"""Records and the results store: one serialisation, strict reads, no side effects, the resume plan."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from ntire_bench.results.records import SCHEMA, ImageResult, RecordError, SampleStats, SubmissionResult
from ntire_bench.results.store import ResultsError, ResultsStore, atomic_write_json, read_result

from support.factory import V, make_result, rlfn


def test_a_record_survives_a_round_trip_through_its_file(tmp_path):
    record = rlfn()
    record.datasets[V].images = [ImageResult("0801", psnr=math.inf, psnr_y=40.0, ssim=1.0, ssim_y=1.0,
                                             runtime_ms=SampleStats(1, 1, 1, 1, 0, None, 3))]
    path = ResultsStore(tmp_path).save(record)
    again = read_result(path, strict=True)
    assert again == record and again.origin == "rlfn.json"
    assert math.isinf(again.datasets[V].images[0].psnr)


def test_files_are_strict_json_that_browsers_parse(tmp_path):
    record = make_result("x", psnr={V: math.inf})
    path = ResultsStore(tmp_path).save(record)
    text = path.read_text()
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    assert '"psnr": "Infinity"' in text


def test_results_files_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        path = ResultsStore(tmp_path).save(rlfn())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["rlfn.json"]  # no temporary file left


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON"),
    ('{"hello": 1}', "schema is None, expected 'ntire-bench/results/v2'"),
    (json.dumps({"schema": "ntire-bench/results/v1", "submission": "x", "status": "ok"}),
     "written by another version of ntire-bench, re-run it"),
    (json.dumps({"schema": SCHEMA, "submission": "x", "status": "weird"}), "status must be one of"),
    (json.dumps({"schema": SCHEMA, "submission": "x", "status": "ok", "datasets": {"A": {"num_images": "3"}}}),
     "field datasets.A.num_images must be an integer"),
    (json.dumps({"schema": SCHEMA, "status": "ok"}), "field submission is missing"),
])
def test_bad_files_are_rejected_naming_the_field(tmp_path, content, reason):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ResultsError, match=reason) as info:
        read_result(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_strict_reads_refuse_unknown_fields_lenient_reads_ignore_them():
    data = rlfn().to_json()
    data["datasets"][V]["extra"] = 1
    assert SubmissionResult.from_json(data).submission == "rlfn"
    with pytest.raises(RecordError, match=f"field datasets.{V}.extra is not part of the results format"):
        SubmissionResult.from_json(data, strict=True)


def test_reading_never_moves_anything(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(rlfn())
    (tmp_path / "broken.json").write_text("{broken")
    loaded = store.load_all()
    assert [r.submission for r in loaded.results] == ["rlfn"]
    assert [p.path.name for p in loaded.problems] == ["broken.json"] and "not valid JSON" in loaded.problems[0].reason
    assert isinstance(store.read("broken"), type(loaded.problems[0]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "rlfn.json"]
    with pytest.raises(ResultsError, match="broken.json: not valid JSON.*re-run that submission or remove the file"):
        store.load_all(strict=True)


def test_missing_or_empty_results_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ResultsError, match="no such results directory"):
        ResultsStore(tmp_path / "nope").load_all()
    with pytest.raises(ResultsError, match="holds no results files"):
        ResultsStore(tmp_path).load_all()


def test_set_aside_renames_and_says_what_it_did(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(rlfn())
    moved = store.set_aside("rlfn", "measured with other settings")
    assert moved.moved_to.name.startswith("rlfn.json.stale-") and moved.moved_to.exists()
    assert moved.line().startswith("measured with other settings; moved rlfn.json to rlfn.json.stale-")
    assert store.set_aside("rlfn", "again") is None


def _measured(key: str, dataset_keys: dict[str, str], status: str = "ok") -> SubmissionResult:
    record = make_result("sub", psnr={name: 30.0 for name in dataset_keys}, status=status)
    record.run_key = key
    for name, cache_key in dataset_keys.items():
        record.datasets[name].cache_key = cache_key
    return record


def test_the_resume_plan(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.plan("sub", "k1", {"A": "a"}).todo == ["A"]
    store.save(_measured("k1", {"A": "a", "B": "b"}))
    # Same key: A is reused; B (not named) is kept; C is to do.
    plan = store.plan("sub", "k1", {"A": "a", "C": "c"})
    assert sorted(plan.reuse) == ["A", "B"] and plan.todo == ["C"] and plan.set_aside is None
    # Everything there: up to date. --force: measure again, keep the rest.
    assert store.plan("sub", "k1", {"A": "a"}).up_to_date is not None
    assert store.plan("sub", "k1", {"A": "a"}, force=True).todo == ["A"]
    # Changed data: re-measure that dataset only.
    assert store.plan("sub", "k1", {"A": "a2"}).todo == ["A"]
    # Other code, weights or settings: set the file aside, measure everything.
    plan = store.plan("sub", "k2", {"A": "a"})
    assert plan.todo == ["A"] and "other code, weights, device or settings" in plan.set_aside
    # A module the submission imported has changed since.
    plan = store.plan("sub", "k1", {"A": "a"}, dependencies_changed=lambda r: "blocks.py, which it imported, has changed")
    assert plan.set_aside.endswith("blocks.py, which it imported, has changed") and plan.todo == ["A"]


def test_an_interrupted_run_resumes_but_is_never_up_to_date(tmp_path):
    store = ResultsStore(tmp_path)
    store.save(_measured("k1", {"A": "a"}, status="running"))
    plan = store.plan("sub", "k1", {"A": "a"})
    assert plan.up_to_date is None and list(plan.reuse) == ["A"] and plan.todo == []


def test_a_corrupt_file_is_planned_aside_as_bad(tmp_path):
    (tmp_path / "sub.json").write_text('{"schema": "ntire-bench/results/v2", "submission": "sub", "sta')
    plan = ResultsStore(tmp_path).plan("sub", "k", {"A": "a"})
    assert plan.set_aside_label == "bad" and "not valid JSON" in plan.set_aside


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"x": 1})
    atomic_write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(ValueError):
        atomic_write_json(path, {"x": float("nan")})  # never a non-standard token on disk
    assert json.loads(path.read_text()) == {"x": 2}
