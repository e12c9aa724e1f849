"""Codabench bundle: what write_bundle produces, and what the competition.yaml check catches."""

from __future__ import annotations

import copy
import shlex
import zipfile
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ntire_bench.util.version import __version__
from ntire_bench.codabench.spec import BundleError, BundleSpec, COLUMNS, COLUMN_KEYS, PhaseSpec, ntire_phases
from ntire_bench.codabench.bundle import competition_yaml, organiser_data_files, program_command, write_bundle
from ntire_bench.codabench.validate import validate_competition_yaml
from ntire_bench.codabench.archive import validate_bundle

ORGANISER_FILES = ["reference_data/development_hr.zip", "reference_data/final_hr.zip", "input_data/final_lr.zip"]
SCORE = "ntire-bench codabench score --input /app/input --output /app/output --edition ntire2026"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(BundleSpec(lock_phases=False), tmp_path_factory.mktemp("bundle") / "out" / "bundle.zip")


@pytest.fixture()
def data() -> dict:
    return competition_yaml(BundleSpec(lock_phases=False))


def _read(bundle: Path, name: str) -> bytes:
    with zipfile.ZipFile(bundle) as archive:
        return archive.read(name)


def _with_members(source: Path, target: Path, extra: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        for name, content in extra.items():
            out.writestr(name, content)
    return target


# --------------------------------------------------------------------------- the generated bundle


def test_bundle_members(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as archive:
        assert archive.namelist() == [
            "README.md", "competition.yaml", "ingestion_program/metadata.yaml", "logo.png",
            "pages/evaluation.md", "pages/overview.md", "pages/submission.md", "pages/terms.md",
            "scoring_program/metadata.yaml",
        ]
    assert organiser_data_files(BundleSpec()) == ORGANISER_FILES


def test_generated_yaml_is_valid_and_only_lacks_the_organisers_data(bundle: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(_read(bundle, "competition.yaml"))
    assert validate_competition_yaml(data, COLUMN_KEYS) == []
    assert validate_bundle(bundle) == [
        f"tasks[0].reference_data: '{ORGANISER_FILES[0]}' is not in the bundle; add it (or the UUID key of a dataset already on Codabench)",
        f"tasks[1].input_data: '{ORGANISER_FILES[2]}' is not in the bundle; add it (or the UUID key of a dataset already on Codabench)",
        f"tasks[1].reference_data: '{ORGANISER_FILES[1]}' is not in the bundle; add it (or the UUID key of a dataset already on Codabench)",
    ]
    completed = _with_members(bundle, tmp_path / "complete.zip", {name: b"PK\x05\x06" + bytes(18) for name in ORGANISER_FILES})
    assert validate_bundle(completed) == []


def test_phases_tasks_and_programs(bundle: Path) -> None:
    data = yaml.safe_load(_read(bundle, "competition.yaml"))
    assert data["version"] == 2 and data["image"] == "logo.png" and data["terms"] == "pages/terms.md"
    dev, final = data["phases"]
    assert (dev["name"], dev["start"], dev["end"], dev["tasks"]) == ("Development", datetime(2026, 1, 20), datetime(2026, 3, 14), [0])
    assert (final["name"], final["start"], final["end"], final["tasks"]) == ("Final", datetime(2026, 3, 14), datetime(2026, 3, 21), [1])
    assert dev["accepts_only_result_submissions"] is True and final["accepts_only_result_submissions"] is False
    dev_task, final_task = data["tasks"]
    assert dev_task == {"index": 0, "name": "Development task", "description": "Scores DIV2K_LSDIR_valid (x4).",
                        "scoring_program": "scoring_program", "reference_data": ORGANISER_FILES[0]}
    assert final_task["ingestion_program"] == "ingestion_program" and final_task["input_data"] == ORGANISER_FILES[2]
    assert b"&id" not in _read(bundle, "competition.yaml")  # the shared date is written out, not aliased


def test_leaderboard_columns_are_the_public_score_keys(bundle: Path) -> None:
    (board,) = yaml.safe_load(_read(bundle, "competition.yaml"))["leaderboards"]
    assert COLUMN_KEYS == ("psnr_valid", "psnr_test", "score_final", "score_runtime", "score_flops", "score_params",
                          "runtime_ms", "params_m", "flops_g")
    assert [c["key"] for c in board["columns"]] == list(COLUMN_KEYS)
    assert [c["index"] for c in board["columns"]] == list(range(len(COLUMN_KEYS)))
    sorting = {c["key"]: c["sorting"] for c in board["columns"]}
    assert sorting["psnr_valid"] == sorting["psnr_test"] == "desc"
    assert all(sorting[k] == "asc" for k in COLUMN_KEYS[2:])
    primary = next(c for c in board["columns"] if c["index"] == board["primary_index"])
    assert (primary["key"], primary["title"]) == ("score_final", "Score_Final")
    assert not any("computation" in c for c in board["columns"])


def test_program_commands(bundle: Path) -> None:
    scoring = yaml.safe_load(_read(bundle, "scoring_program/metadata.yaml"))["command"]
    assert shlex.split(scoring) == [
        "sh", "-c", f"python -m pip install --quiet --no-cache-dir ntire-bench=={__version__} && exec {SCORE}"]
    ingest = yaml.safe_load(_read(bundle, "ingestion_program/metadata.yaml"))["command"]
    assert shlex.split(ingest)[2].endswith(
        "exec ntire-bench codabench ingest --submission /app/ingested_program --input /app/input_data --output /app/output")
    assert program_command(SCORE, None) == SCORE
    quoted = program_command("run it", "ntire-bench @ git+https://example.org/x.git")
    assert shlex.split(shlex.split(quoted)[2]) == [
        "python", "-m", "pip", "install", "--quiet", "--no-cache-dir", "ntire-bench @ git+https://example.org/x.git",
        "&&", "exec", "run", "it"]


def test_logo_pages_and_readme(bundle: Path) -> None:
    logo = cv2.imdecode(np.frombuffer(_read(bundle, "logo.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert logo.shape == (96, 96, 3) and logo.dtype == np.uint8
    evaluation = _read(bundle, "pages/evaluation.md").decode()
    assert "Score_Final   = 0.8 * Score_Runtime + 0.1 * Score_FLOPs + 0.1 * Score_Params" in evaluation
    assert "cannot compute these" in evaluation and "baseline `span`" in evaluation
    assert "26.90 dB on DIV2K_LSDIR_valid, 26.99 dB on DIV2K_LSDIR_test" in evaluation
    assert "**Development** (2026-01-20 00:00 UTC to 2026-03-14 00:00 UTC)" in _read(bundle, "pages/overview.md").decode()
    readme = _read(bundle, "README.md").decode()
    assert "never bundles ground truth" in readme
    assert all(f"`{name}`" in readme for name in ORGANISER_FILES)


def test_bundle_is_reproducible(bundle: Path, tmp_path: Path) -> None:
    assert write_bundle(BundleSpec(lock_phases=False), tmp_path / "again.zip").read_bytes() == bundle.read_bytes()


def test_no_requirement_and_open_ended_single_phase(tmp_path: Path) -> None:
    phase = PhaseSpec("Benchmark", "results", datetime(2026, 1, 1), None, ("Set5",))
    spec = BundleSpec(phases=(phase,), harness_requirement=None, edition="ntire2024", queue="gpu-vhost",
                      lock_phases=False)
    path = write_bundle(spec, tmp_path / "b.zip")
    data = yaml.safe_load(_read(path, "competition.yaml"))
    assert "end" not in data["phases"][0] and data["queue"] == "gpu-vhost"
    assert yaml.safe_load(_read(path, "scoring_program/metadata.yaml")) == {"command": SCORE.replace("ntire2026", "ntire2024")}
    assert "ingestion_program/metadata.yaml" not in zipfile.ZipFile(path).namelist()


@pytest.mark.parametrize(("spec", "message"), [
    (BundleSpec(edition="ntire2099"), "BundleSpec.edition: unknown edition 'ntire2099'"),
    (BundleSpec(phases=()), "BundleSpec.phases: empty"),
    (BundleSpec(phases=(PhaseSpec("Dev", "upload", datetime(2026, 1, 1), None, ("x",)),)), "phase 'Dev': kind 'upload' is not one of results, code"),
    (BundleSpec(primary_key="score"), "BundleSpec.primary_key: 'score' is not a column key"),
    (BundleSpec(phases=ntire_phases(datetime(2026, 3, 1), datetime(2026, 2, 1), datetime(2026, 4, 1))),
     "the generated competition.yaml is invalid: phases[0].end: 2026-02-01 00:00:00 is not after its start 2026-03-01 00:00:00"),
    (BundleSpec(columns=COLUMNS[:-1]),
     "the generated competition.yaml is invalid: scores.json key 'flops_g': matches no leaderboard column"),
])
def test_write_bundle_refuses_bad_specs(tmp_path: Path, spec: BundleSpec, message: str) -> None:
    with pytest.raises(BundleError) as exc:
        write_bundle(spec, tmp_path / "bad.zip")
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the competition.yaml check


def test_missing_phase_task(data: dict) -> None:
    data["phases"][1]["tasks"] = [7]
    assert validate_competition_yaml(data) == ["phases[1].tasks: task 7 is not defined in tasks (defined: 0, 1)"]


def test_bad_sorting_and_computation(data: dict) -> None:
    columns = data["leaderboards"][0]["columns"]
    columns[0]["sorting"] = "descending"
    columns[1].update(computation="median", computation_indexes=[1, 42])
    assert validate_competition_yaml(data) == [
        "leaderboards[0].columns[0].sorting: 'descending' is not 'asc' (smaller is better) or 'desc' (larger is better)",
        "leaderboards[0].columns[1].computation: 'median' is not one of sum, avg, min, max",
        "leaderboards[0].columns[1].computation_indexes: the column refers to itself",
        "leaderboards[0].columns[1].computation_indexes: 42 is not the index of a column of this leaderboard",
    ]


def test_duplicate_column_keys_and_indexes(data: dict) -> None:
    columns = data["leaderboards"][0]["columns"]
    columns[1]["key"] = "psnr_valid"
    columns[2]["index"] = 0
    assert validate_competition_yaml(data) == [
        "leaderboards[0].columns[1].key: 'psnr_valid' is also the key of leaderboards[0].columns[0]; column keys must be unique",
        "leaderboards[0].columns[2].index: 0 is used by another column; column indexes must be unique",
        "leaderboards[0].primary_index: 2 is not the index of a column (indexes: 0, 1, 3, 4, 5, 6, 7, 8)",
    ]


def test_scores_json_keys_must_match_the_columns(data: dict) -> None:
    written = [k for k in COLUMN_KEYS if k != "flops_g"] + ["psnr_vaild"]
    assert validate_competition_yaml(data, written) == [
        "scores.json key 'psnr_vaild': matches no leaderboard column (did you mean 'psnr_valid'?); Codabench would drop it silently",
        ("leaderboard column 'flops_g': no scores.json key writes it, so it would stay empty; "
        "write it in the scoring program or remove the column"),
    ]
    columns = data["leaderboards"][0]["columns"]
    columns.append({"title": "Mean PSNR", "key": "psnr_mean", "index": 9, "sorting": "desc",
                    "computation": "avg", "computation_indexes": [0, 1]})
    assert validate_competition_yaml(data, COLUMN_KEYS) == []
    assert validate_competition_yaml(data, [*COLUMN_KEYS, "psnr_mean"]) == [
        "scores.json key 'psnr_mean': that column has a computation, so Codabench fills it; the scoring program must not write it"]


def test_phase_dates(data: dict) -> None:
    data["phases"][0]["end"] = datetime(2026, 3, 15)
    assert validate_competition_yaml(data) == [
        "phases[1].start: 2026-03-14 00:00:00 is before phase 'Development' ends (2026-03-15 00:00:00); phases must not overlap"]
    data["phases"][0]["end"] = None
    assert validate_competition_yaml(data) == ["phases[0].end: missing; every phase except the last needs an end"]
    data["phases"][0]["end"] = "14 March"
    data["phases"][1]["start"] = "2026-03-14T00:00:00+01:00"
    data["phases"][1]["end"] = "2026-03-21T00:00:00Z"
    assert validate_competition_yaml(data) == [
        "phases[0].end: '14 March' is not a date-time; write YYYY-MM-DD HH:MM:SS (UTC)",
        ("phases[1].start: 2026-03-14T00:00:00+01:00 has a UTC offset, which Codabench discards (it reads every time as UTC); "
        "write the time in UTC: 2026-03-13 23:00:00"),
    ]


def test_required_fields_and_typos(data: dict) -> None:
    del data["version"], data["title"]
    data["leaderboard"] = data.pop("leaderboards")
    data["phases"][0]["max_submissions"] = 0
    data["make_programs_available"] = "yes"
    assert validate_competition_yaml(data) == [
        "leaderboard: not a Codabench competition field, it would be ignored; did you mean 'leaderboards'?",
        "version: must be 2 (a Codabench v2 bundle), got None",
        "title: required, a non-empty string; got nothing",
        "make_programs_available: expected true or false, got 'yes'",
        "phases[0].max_submissions: expected a positive integer, got 0",
        "leaderboards: missing; Codabench refuses a bundle without one (note the plural: 'leaderboards')",
    ]
    assert validate_competition_yaml(["not", "a", "mapping"]) == [
        "competition.yaml: the top level must be a mapping of fields (title, phases, ...), got list"]


def test_codabench_limits_and_structure(data: dict) -> None:
    board = data["leaderboards"][0]
    board["columns"][0]["title"] = "PSNR on the DIV2K and LSDIR validation set"
    board["submission_rule"] = "Best"
    data["leaderboards"].append(copy.deepcopy(board) | {"key": "second", "columns": [
        {"title": "x", "key": "x", "index": 0}]})
    data["tasks"][1].pop("scoring_program")
    del data["pages"]
    assert validate_competition_yaml(data) == [
        "pages: missing; the v2 unpacker needs a list; give at least an overview page",
        "tasks[1].scoring_program: required (a folder or .zip with metadata.yaml); every task needs one",
        "leaderboards: 2 given, but Codabench attaches only the first to the phases; merge the columns into one",
        ("leaderboards[0].submission_rule: 'Best' is not one of Add, Add_And_Delete, Add_And_Delete_Multiple, "
        "Force_Last, Force_Latest_Multiple, Force_Best"),
        "leaderboards[0].columns[0].title: 'PSNR on the DIV2K and LSDIR validation set' is 42 characters; Codabench allows at most 36",
        ("leaderboards[1].submission_rule: 'Best' is not one of Add, Add_And_Delete, Add_And_Delete_Multiple, "
        "Force_Last, Force_Latest_Multiple, Force_Best"),
        "leaderboards[1].primary_index: 2 is not the index of a column (indexes: 0)",
    ]


def test_file_references(data: dict) -> None:
    files = ["competition.yaml", "logo.png", "pages/overview.md", "pages/evaluation.md", "pages/submission.md",
             "pages/terms.md", "scoring_program/metadata.yaml", "ingestion_program/metadata.yaml", *ORGANISER_FILES]
    assert validate_competition_yaml(data, COLUMN_KEYS, files) == []
    data["tasks"][0]["reference_data"] = "0b5c7e4e-3a1f-4c55-9c38-8f7d3f0f9d2a"  # a dataset already on Codabench
    data["tasks"][1]["reference_data"] = "../hr.zip"
    data["image"] = "/logo.png"
    data["pages"][0]["file"] = "pages/welcome.md"
    assert validate_competition_yaml(data, COLUMN_KEYS, files) == [
        "image: '/logo.png' must be a relative path inside the bundle (no leading '/', '..' or backslash)",
        "pages[0].file: 'pages/welcome.md' is not in the bundle; add it",
        "tasks[1].reference_data: '../hr.zip' must be a relative path inside the bundle (no leading '/', '..' or backslash)",
    ]


def test_validate_bundle_reads_pages_and_program_metadata(bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tmp_path / "edited.zip", "w") as out:
        for info in src.infolist():
            if info.filename == "pages/terms.md":
                out.writestr(info, b"")
            elif info.filename == "scoring_program/metadata.yaml":
                out.writestr(info, b"description: no command here\n")
            else:
                out.writestr(info, src.read(info))
        for name in ORGANISER_FILES:
            out.writestr(name, b"x")
    assert validate_bundle(tmp_path / "edited.zip") == [
        "terms: 'pages/terms.md' is empty; Codabench refuses empty pages",
        "pages[3].file: 'pages/terms.md' is empty; Codabench refuses empty pages",
        "tasks[0].scoring_program: 'scoring_program/metadata.yaml' has no 'command:'; Codabench would not know how to run the program",
        "tasks[1].scoring_program: 'scoring_program/metadata.yaml' has no 'command:'; Codabench would not know how to run the program",
    ]


def test_validate_bundle_refuses_unreadable_bundles(bundle: Path, tmp_path: Path) -> None:
    not_zip = tmp_path / "bundle.zip"
    not_zip.write_text("hello")
    with pytest.raises(BundleError, match="not a readable zip"):
        validate_bundle(not_zip)
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tmp_path / "nested.zip", "w") as out:
        for info in src.infolist():
            out.writestr(f"my_bundle/{info.filename}", src.read(info))
    with pytest.raises(BundleError) as exc:
        validate_bundle(tmp_path / "nested.zip")
    assert str(exc.value) == (f"{tmp_path / 'nested.zip'}: no competition.yaml at the root of the zip; it is at "
                              f"'my_bundle/competition.yaml': zip the folder's contents, not the folder")
    with zipfile.ZipFile(tmp_path / "bad_yaml.zip", "w") as out:
        out.writestr("competition.yaml", "title: [unclosed\n")
    with pytest.raises(BundleError, match=r"competition.yaml is not valid YAML at line 2; fix the syntax"):
        validate_bundle(tmp_path / "bad_yaml.zip")


def test_by_default_each_phase_kind_has_its_own_scoring_program(tmp_path):
    """Locked phases: a development-phase upload is scored with --phase results, so it cannot smuggle in
    an ingestion manifest and post a made-up Score_Final."""
    path = write_bundle(BundleSpec(), tmp_path / "locked.zip")
    completed = _with_members(path, tmp_path / "complete.zip", {name: b"PK\x05\x06" + bytes(18) for name in ORGANISER_FILES})
    assert validate_bundle(completed) == []  # only the organisers' data was missing
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        competition = yaml.safe_load(archive.read("competition.yaml"))
        results = yaml.safe_load(archive.read("scoring_program_results/metadata.yaml"))
        code = yaml.safe_load(archive.read("scoring_program/metadata.yaml"))
    assert {"scoring_program_results/metadata.yaml", "scoring_program/metadata.yaml"} <= names
    assert "--phase results" in " ".join(results["command"]) if isinstance(results["command"], list) \
        else "--phase results" in results["command"]
    assert "--phase code" in " ".join(code["command"]) if isinstance(code["command"], list) \
        else "--phase code" in code["command"]
    assert {task["scoring_program"] for task in competition["tasks"]} == {"scoring_program", "scoring_program_results"}


def test_the_check_command_in_the_bundle_readme_runs_in_a_fresh_interpreter(bundle: Path) -> None:
    """The README's one-line check imports codabench_validate first (no other module loaded)."""
    import re
    import subprocess
    import sys

    readme = _read(bundle, "README.md").decode()
    (code,) = re.findall(r'python -c "([^"]+)"', readme)
    out = subprocess.run([sys.executable, "-c", code], cwd=bundle.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # Before the organiser adds the ground truth, the check names exactly the files still to add.
    missing = re.findall(r"'([\w/]+\.zip)' is not in the bundle", out.stdout)
    assert sorted(missing) == sorted(organiser_data_files(BundleSpec(lock_phases=False)))
