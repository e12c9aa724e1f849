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

from ntire_bench.codabench.archive import validate_bundle
from ntire_bench.codabench.bundle import competition_yaml, organiser_data_files, write_bundle
from ntire_bench.codabench.spec import (
    COLUMN_KEYS,
    COLUMNS,
    DEFAULT_DOCKER_IMAGE,
    BundleError,
    BundleSpec,
    PhaseSpec,
    ntire_phases,
)
from ntire_bench.codabench.validate import validate_competition_yaml
from ntire_bench.util.version import __version__

ORGANISER_FILES = ["reference_data/development_hr.zip", "reference_data/final_hr.zip", "input_data/final_lr.zip"]
SCORE = "ntire-bench codabench score --input /app/input --output /app/output --edition ntire2026"
QUEUE = "0b5c7e4e-3a1f-4c55-9c38-8f7d3f0f9d2b"
WHEEL_NAME = f"ntire_bench-{__version__}-py3-none-any.whl"
MISSING = " (Codabench says: Cannot find dataset: \"{}\")"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the harness wheel: the bundle copies it into worker_image/ (the real one: test_codabench_offline)."""
    path = tmp_path_factory.mktemp("wheel") / WHEEL_NAME
    path.write_bytes(b"stand-in wheel")
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return write_bundle(BundleSpec(lock_phases=False), tmp_path_factory.mktemp("bundle") / "out" / "bundle.zip",
                        wheel=wheel)


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
            "scoring_program/metadata.yaml", "worker_image/Dockerfile", f"worker_image/{WHEEL_NAME}",
            "worker_image/requirements.txt",
        ]
        assert archive.read(f"worker_image/{WHEEL_NAME}") == b"stand-in wheel"
    assert organiser_data_files(BundleSpec()) == ORGANISER_FILES


def test_generated_yaml_is_valid_and_only_lacks_the_organisers_data(bundle: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(_read(bundle, "competition.yaml"))
    assert validate_competition_yaml(data, COLUMN_KEYS) == []
    assert validate_bundle(bundle) == [
        f"tasks[0].reference_data: '{ORGANISER_FILES[0]}' is not in the bundle; add it (or the UUID key of a dataset "
        f"already on Codabench)" + MISSING.format(ORGANISER_FILES[0]),
        f"tasks[1].input_data: '{ORGANISER_FILES[2]}' is not in the bundle; add it (or the UUID key of a dataset "
        f"already on Codabench)" + MISSING.format(ORGANISER_FILES[2]),
        f"tasks[1].reference_data: '{ORGANISER_FILES[1]}' is not in the bundle; add it (or the UUID key of a dataset "
        f"already on Codabench)" + MISSING.format(ORGANISER_FILES[1]),
    ]
    completed = _with_members(bundle, tmp_path / "complete.zip", {name: b"PK\x05\x06" + bytes(18) for name in ORGANISER_FILES})
    assert validate_bundle(completed) == []


def test_phases_tasks_and_programs(bundle: Path) -> None:
    data = yaml.safe_load(_read(bundle, "competition.yaml"))
    assert data["version"] == 2 and data["image"] == "logo.png" and data["terms"] == "pages/terms.md"
    dev, final = data["phases"]
    # quoted strings (an unquoted timestamp would load as a datetime, cut to midnight by Codabench), and
    # Development ends strictly before Final starts (Codabench refuses equal times)
    assert (dev["name"], dev["start"], dev["end"], dev["tasks"]) == (
        "Development", "2026-01-20 00:00:00", "2026-03-13 23:59:59", [0])
    assert (final["name"], final["start"], final["end"], final["tasks"]) == (
        "Final", "2026-03-14 00:00:00", "2026-03-21 00:00:00", [1])
    assert "start: '2026-03-14 00:00:00'" in _read(bundle, "competition.yaml").decode()
    assert set(dev) == {"index", "name", "description", "start", "end", "max_submissions_per_day", "max_submissions",
                        "execution_time_limit", "tasks"}  # only fields Codabench reads
    assert (dev["execution_time_limit"], final["execution_time_limit"]) == (600, 3600)
    assert data["docker_image"] == DEFAULT_DOCKER_IMAGE == f"ntire-bench-worker:{__version__}" and "queue" not in data
    dev_task, final_task = data["tasks"]
    assert dev_task == {"index": 0, "name": "Development task", "description": "Scores DIV2K_LSDIR_valid (x4).",
                        "scoring_program": "scoring_program", "reference_data": ORGANISER_FILES[0]}
    assert final_task["ingestion_program"] == "ingestion_program" and final_task["input_data"] == ORGANISER_FILES[2]


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


def test_program_commands_run_the_harness_from_the_image_and_install_nothing(bundle: Path) -> None:
    scoring = yaml.safe_load(_read(bundle, "scoring_program/metadata.yaml"))["command"]
    assert scoring == SCORE
    ingest = yaml.safe_load(_read(bundle, "ingestion_program/metadata.yaml"))["command"]
    assert shlex.split(ingest) == ["ntire-bench", "codabench", "ingest", "--submission", "/app/ingested_program",
                                   "--input", "/app/input_data", "--output", "/app/output"]
    with zipfile.ZipFile(bundle) as archive:
        programs = [n for n in archive.namelist() if n.endswith("metadata.yaml")]
        assert not [n for n in programs if b"pip" in archive.read(n)]


def test_logo_pages_and_readme(bundle: Path) -> None:
    logo = cv2.imdecode(np.frombuffer(_read(bundle, "logo.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert logo.shape == (96, 96, 3) and logo.dtype == np.uint8
    evaluation = _read(bundle, "pages/evaluation.md").decode()
    assert "Score_Final   = 0.8 * Score_Runtime + 0.1 * Score_FLOPs + 0.1 * Score_Params" in evaluation
    assert "cannot compute these" in evaluation and "baseline `span`" in evaluation
    assert "26.90 dB on DIV2K_LSDIR_valid, 26.99 dB on DIV2K_LSDIR_test" in evaluation
    assert "**Development** (2026-01-20 00:00 UTC to 2026-03-13 23:59 UTC)" in _read(bundle, "pages/overview.md").decode()
    readme = _read(bundle, "README.md").decode()
    assert "never bundles ground truth" in readme
    assert all(f"`{name}`" in readme for name in ORGANISER_FILES)
    # how to build, push and name the worker image, and what happens without a queue
    assert f"docker build --tag REGISTRY/ntire-bench-worker:{__version__} worker_image/" in readme
    assert f"docker push REGISTRY/ntire-bench-worker:{__version__}" in readme
    assert f"--docker-image REGISTRY/ntire-bench-worker:{__version__}" in readme
    assert "so the 3600 s given here become 600 s" in readme and "--queue VHOST" in readme


def test_bundle_is_reproducible(bundle: Path, wheel: Path, tmp_path: Path) -> None:
    again = write_bundle(BundleSpec(lock_phases=False), tmp_path / "again.zip", wheel=wheel)
    assert again.read_bytes() == bundle.read_bytes()


def test_queue_and_open_ended_single_phase(tmp_path: Path, wheel: Path) -> None:
    phase = PhaseSpec("Benchmark", "results", datetime(2026, 1, 1, 9, 30), None, ("Set5",))
    spec = BundleSpec(phases=(phase,), edition="ntire2024", queue=QUEUE, lock_phases=False)
    path = write_bundle(spec, tmp_path / "b.zip", wheel=wheel)
    data = yaml.safe_load(_read(path, "competition.yaml"))
    assert "end" not in data["phases"][0] and data["phases"][0]["start"] == "2026-01-01 09:30:00"
    assert data["queue"] == QUEUE
    assert yaml.safe_load(_read(path, "scoring_program/metadata.yaml")) == {"command": SCORE.replace("ntire2026", "ntire2024")}
    assert "ingestion_program/metadata.yaml" not in zipfile.ZipFile(path).namelist()
    readme = _read(path, "README.md").decode()
    assert f"`queue` is `{QUEUE}`: the whole competition" in readme and "become 600 s" not in readme


@pytest.mark.parametrize(("spec", "message"), [
    (BundleSpec(edition="ntire2099"), "BundleSpec.edition: unknown edition 'ntire2099'"),
    (BundleSpec(phases=()), "BundleSpec.phases: empty"),
    (BundleSpec(phases=(PhaseSpec("Dev", "upload", datetime(2026, 1, 1), None, ("x",)),)), "phase 'Dev': kind 'upload' is not one of results, code"),
    (BundleSpec(primary_key="score"), "BundleSpec.primary_key: 'score' is not a column key"),
    (BundleSpec(phases=ntire_phases(datetime(2026, 3, 1), datetime(2026, 2, 1), datetime(2026, 4, 1))),
     "the generated competition.yaml is invalid: phases[0].end: 2026-01-31 23:59:59 is not after its start 2026-03-01 00:00:00"),
    (BundleSpec(queue="my-gpu-queue"), "BundleSpec.queue: 'my-gpu-queue' is not a UUID"),
    (BundleSpec(columns=COLUMNS[:-1]),
     "the generated competition.yaml is invalid: scores.json key 'flops_g': matches no leaderboard column"),
])
def test_write_bundle_refuses_bad_specs(tmp_path: Path, wheel: Path, spec: BundleSpec, message: str) -> None:
    with pytest.raises(BundleError) as exc:
        write_bundle(spec, tmp_path / "bad.zip", wheel=wheel)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_a_wheel_of_another_version_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "ntire_bench-9.9.9-py3-none-any.whl"
    other.write_bytes(b"x")
    with pytest.raises(BundleError, match=f"is ntire-bench 9.9.9, but this harness is {__version__}"):
        write_bundle(BundleSpec(), tmp_path / "b.zip", wheel=other)


# --------------------------------------------------------------------------- the competition.yaml check
# (one test per rule Codabench enforces is in test_codabench_rules.py; these check whole problem lists)


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


def test_phase_dates_as_codabench_reads_them(data: dict) -> None:
    """Quoted strings keep their time; an unquoted timestamp is cut to its day, so a collision appears."""
    data["phases"][0]["end"] = datetime(2026, 3, 14, 11, 59, 59)  # unquoted: Codabench reads 2026-03-14 00:00
    data["phases"][1]["start"] = "2026-03-14 00:00:00"
    assert validate_competition_yaml(data) == [
        ("phases[0].end: 2026-03-14 11:59:59 is an unquoted YAML timestamp, of which Codabench keeps only the day: it "
         "reads 2026-03-14 00:00 UTC; quote it: '2026-03-14 11:59:59'"),
        ("phases[1].start: 2026-03-14 00:00:00 is the very moment phase 'Development' ends; end 'Development' earlier "
         "(e.g. one second before) (Codabench says: Phases dates conflict. Phase: Final should start after Phase: "
         "Development has ended)"),
    ]
    data["phases"][0]["end"] = datetime(2026, 3, 13)  # an unquoted midnight is read as written
    assert validate_competition_yaml(data) == []
    data["phases"][0]["end"] = None
    assert validate_competition_yaml(data) == [
        ("phases[0].end: missing; every phase except the last needs an end (Codabench says: Phase: Development must "
         "have an end time because it has a phase after it.)")]
    data["phases"][0]["end"] = "14 March"
    data["phases"][1]["start"] = "2026-03-14T00:00:00+01:00"
    data["phases"][1]["end"] = "2026-03-21T00:00:00Z"
    assert validate_competition_yaml(data) == [
        "phases[0].end: '14 March' is not a date-time Codabench reads reliably; write 'YYYY-MM-DD HH:MM:SS' (UTC)",
        ("phases[1].start: 2026-03-14T00:00:00+01:00 has a UTC offset, which Codabench discards (it would read "
         "2026-03-14 00:00 UTC); write the time in UTC: '2026-03-13 23:00:00'"),
    ]


def test_required_fields_and_typos(data: dict) -> None:
    del data["version"], data["title"]
    data["leaderboard"] = data.pop("leaderboards")
    data["phases"][0]["max_submissions"] = 0
    data["make_programs_available"] = "yes"
    assert validate_competition_yaml(data) == [
        "leaderboard: not a Codabench competition field, it would be ignored; did you mean 'leaderboards'?",
        "version: must be 2 (a Codabench v2 bundle), got None; without one Codabench reads the bundle as its old v1.5 format",
        "title: required, a non-empty string; got nothing (Codabench says: This field may not be null.)",
        "make_programs_available: expected true or false, got 'yes'",
        "phases[0].max_submissions: expected a positive integer, got 0",
        ("leaderboards: missing; Codabench refuses a bundle without one (note the plural: 'leaderboards') "
         "(Codabench says: Could not find leaderboards in the competition yaml)"),
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
    rule = ("'Best' is not one of Add, Add_And_Delete, Add_And_Delete_Multiple, Force_Last, Force_Latest_Multiple, "
            "Force_Best (Codabench says: \"Best\" is not a valid choice.)")
    assert validate_competition_yaml(data) == [
        ("tasks[1].scoring_program: required (a folder or .zip with metadata.yaml); every task needs one "
         "(Codabench says: ERROR: Task \"Final task\" does not have a scoring program)"),
        "leaderboards: 2 given, but Codabench attaches only the first to the phases; merge the columns into one",
        f"leaderboards[0].submission_rule: {rule}",
        ("leaderboards[0].columns[0].title: 'PSNR on the DIV2K and LSDIR validation set' is 42 characters; Codabench "
         "allows at most 36 (Codabench says: Ensure this field has no more than 36 characters.)"),
        f"leaderboards[1].submission_rule: {rule}",
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
        "pages[0].file: 'pages/welcome.md' is not in the bundle; add it (Codabench says: Unable to find page: pages/welcome.md)",
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
            out.writestr(name, b"PK\x05\x06" + bytes(18))
    no_command = ("'scoring_program/metadata.yaml' has no 'command:'; Codabench would not know how to run the program")
    assert validate_bundle(tmp_path / "edited.zip") == [
        ("terms: 'pages/terms.md' is empty; Codabench refuses empty pages (Codabench says: pages/terms.md is empty, "
         "it must contain content.)"),
        ("pages[3].file: 'pages/terms.md' is empty; Codabench refuses empty pages (Codabench says: Page "
         "'pages/terms.md' is empty, it must contain content.)"),
        f"tasks[0].scoring_program: {no_command}",
        f"tasks[1].scoring_program: {no_command}",
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
    assert str(exc.value).startswith(f"{tmp_path / 'nested.zip'}: no competition.yaml at the root of the zip; it is at "
                                     f"'my_bundle/competition.yaml': zip the folder's contents, not the folder")
    with zipfile.ZipFile(tmp_path / "bad_yaml.zip", "w") as out:
        out.writestr("competition.yaml", "title: [unclosed\n")
    with pytest.raises(BundleError, match=r"competition.yaml is not valid YAML at line 2; fix the syntax"):
        validate_bundle(tmp_path / "bad_yaml.zip")


def test_by_default_each_phase_kind_has_its_own_scoring_program(tmp_path: Path, wheel: Path) -> None:
    """Locked phases: a development-phase upload is scored with --phase results, so it cannot smuggle in
    an ingestion manifest and post a made-up Score_Final."""
    path = write_bundle(BundleSpec(), tmp_path / "locked.zip", wheel=wheel)
    completed = _with_members(path, tmp_path / "complete.zip", {name: b"PK\x05\x06" + bytes(18) for name in ORGANISER_FILES})
    assert validate_bundle(completed) == []  # only the organisers' data was missing
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        competition = yaml.safe_load(archive.read("competition.yaml"))
        results = yaml.safe_load(archive.read("scoring_program_results/metadata.yaml"))["command"]
        code = yaml.safe_load(archive.read("scoring_program/metadata.yaml"))["command"]
    assert {"scoring_program_results/metadata.yaml", "scoring_program/metadata.yaml"} <= names
    assert results == f"{SCORE} --phase results" and code == f"{SCORE} --phase code"
    assert {task["scoring_program"] for task in competition["tasks"]} == {"scoring_program", "scoring_program_results"}


def test_the_check_command_in_the_bundle_readme(bundle: Path) -> None:
    """The README's check command, run as the organiser would: before the ground truth is added it names exactly
    the files still to add (exit 1); with them, the bundle is valid."""
    import re
    import subprocess
    import sys

    readme = _read(bundle, "README.md").decode()
    assert "ntire-bench codabench check bundle.zip" in readme
    command = [sys.executable, "-m", "ntire_bench.cli", "codabench", "check", bundle.name]
    out = subprocess.run(command, cwd=bundle.parent, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1, out.stderr
    missing = re.findall(r"'([\w/]+\.zip)' is not in the bundle", out.stdout)
    assert sorted(missing) == sorted(organiser_data_files(BundleSpec(lock_phases=False)))
    assert out.stderr.splitlines()[0].startswith("warning: phases[1].execution_time_limit: 3600 s, but without a queue")
    complete = _with_members(bundle, bundle.parent / "complete.zip",
                             {name: b"PK\x05\x06" + bytes(18) for name in ORGANISER_FILES})
    out = subprocess.run([*command[:-1], complete.name], cwd=bundle.parent, capture_output=True, text=True, timeout=120, check=False)
    assert (out.returncode, out.stdout) == (0, "complete.zip: valid\n"), out.stderr


def test_a_wheel_that_cannot_be_built_says_to_pass_one(tmp_path: Path) -> None:
    from ntire_bench.codabench.image import build_harness_wheel

    source = tmp_path / "src"
    (source / "ntire_bench").mkdir(parents=True)
    (source / "pyproject.toml").write_text("[project]\nname = \"ntire-bench\"\nversion = [broken\n")
    with pytest.raises(BundleError) as exc:
        build_harness_wheel(tmp_path / "out", source=source)
    message = str(exc.value)
    assert message.startswith(f"building the ntire-bench wheel from {source} failed: ") and "\n" not in message
    assert message.endswith("; pass --wheel PATH instead")
