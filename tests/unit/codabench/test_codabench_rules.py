"""Every rule Codabench enforces on a bundle, as our validator applies it: a generated, complete bundle is
edited to break one rule and ``validate_bundle`` must refuse it with Codabench's own reason (docs/codabench.md).

The messages quoted are those Codabench's unpacker, serializers and compute worker give (cited in
ntire_bench/codabench/validate*.py and archive.py); a few rules are ours where Codabench would
accept silently and then misbehave (an unquoted time, an unused key, a score key no column takes).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ntire_bench.cli.main import main
from ntire_bench.codabench.archive import check_bundle, validate_bundle
from ntire_bench.codabench.bundle import organiser_data_files, write_bundle
from ntire_bench.codabench.spec import COLUMNS, BundleError, BundleSpec
from ntire_bench.codabench.validate_phases import codabench_time
from ntire_bench.scoring.editions import preset_editions
from ntire_bench.util.version import __version__

QUEUE = "6c3f6b0e-4a51-4a7e-9d0e-0d7c7b1c2a10"
Files = dict[str, bytes]


def _data_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("DIV2K_LSDIR_valid/0801.png", b"stand-in")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """The members of a generated bundle with the organiser's data zips added: valid as it is."""
    root = tmp_path_factory.mktemp("rules")
    wheel = root / f"ntire_bench-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"not inspected by the validator")
    path = write_bundle(BundleSpec(queue=QUEUE), root / "bundle.zip", wheel=wheel)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files.update({name: _data_zip() for name in organiser_data_files(BundleSpec())})
    return files


def _zip(files: Files, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def yaml_edit(change: Callable[[dict], None]) -> Callable[[Files], None]:
    """An edit of the bundle that changes competition.yaml's content (safe_dump writes datetimes unquoted)."""
    def edit(files: Files) -> None:
        data = yaml.safe_load(files["competition.yaml"])
        change(data)
        files["competition.yaml"] = yaml.safe_dump(data, sort_keys=False).encode()
    return edit


def member(name: str, content: bytes | None) -> Callable[[Files], None]:
    def edit(files: Files) -> None:
        if content is None:
            files.pop(name)
        else:
            files[name] = content
    return edit


def _dev(d: dict) -> dict:
    return d["phases"][0]


def _final(d: dict) -> dict:
    return d["phases"][1]


def _board(d: dict) -> dict:
    return d["leaderboards"][0]


def _col(d: dict, i: int) -> dict:
    return d["leaderboards"][0]["columns"][i]


def test_the_complete_generated_bundle_is_valid(complete: Files, tmp_path: Path) -> None:
    report = check_bundle(_zip(dict(complete), tmp_path / "b.zip"))
    assert (report.problems, report.warnings) == ([], [])


CASES = [
    # --- phases and dates (v2.py _unpack_phases, base_unpacker.py _validate_phase_ordering, utils.py get_datetime)
    ("phase starts as the previous ends", yaml_edit(lambda d: _dev(d).update(end=_final(d)["start"])),
     "phases[1].start", "Phases dates conflict. Phase: Final should start after Phase: Development has ended"),
    ("phases overlap", yaml_edit(lambda d: _dev(d).update(end="2026-03-15 00:00:00")),
     "phases[1].start", "Phases must be sequential. Phase: Finalstarts before Phase: Development has ended"),
    ("no end before a later phase", yaml_edit(lambda d: _dev(d).pop("end")),
     "phases[0].end", "Phase: Development must have an end time because it has a phase after it."),
    ("no start", yaml_edit(lambda d: _final(d).pop("start")),
     "phases[1].start", "'<' not supported between instances of 'NoneType' and 'datetime.datetime'"),
    ("unquoted timestamp with a time", yaml_edit(lambda d: _final(d).update(end=datetime(2026, 3, 21, 18, 0))),
     "phases[1].end", "Codabench keeps only the day: it reads 2026-03-21 00:00 UTC; quote it: '2026-03-21 18:00:00'"),
    ("a UTC offset", yaml_edit(lambda d: _final(d).update(end="2026-03-21 23:59:00+02:00")),
     "phases[1].end", ("which Codabench discards (it would read 2026-03-21 23:59 UTC); write the time in UTC: "
                       "'2026-03-21 21:59:00'")),
    ("a date Codabench would guess at", yaml_edit(lambda d: _final(d).update(end="21/03/2026")),
     "phases[1].end", "is not a date-time Codabench reads reliably"),
    ("undefined phase task", yaml_edit(lambda d: _final(d).update(tasks=[7])),
     "phases[1].tasks", "Unpacking the bundle failed. Here is the error log: 7"),
    ("phase task given as a string", yaml_edit(lambda d: _final(d).update(tasks=["1"])),
     "phases[1].tasks", "Unpacking the bundle failed. Here is the error log: '1'"),
    ("phase without tasks", yaml_edit(lambda d: _final(d).pop("tasks")),
     "phases[1].tasks", "Phases must contain at least one task to be valid"),
    ("no phases", yaml_edit(lambda d: d.pop("phases")), "phases", "Unable to find any phases for this competition"),
    ("empty phases", yaml_edit(lambda d: d.update(phases=[])), "phases", "error log: list index out of range"),
    ("phase without a name", yaml_edit(lambda d: _dev(d).pop("name")), "phases[0].name", "This field may not be null."),
    ("a key nothing reads", yaml_edit(lambda d: _dev(d).update(accepts_only_result_submissions=True)),
     "phases[0].accepts_only_result_submissions", "not a field Codabench reads (v2.py _unpack_phases)"),
    ("auto-migrate to the first phase", yaml_edit(lambda d: _dev(d).update(auto_migrate_to_this_phase=True)),
     "phases[0].auto_migrate_to_this_phase", "You cannot auto migrate to the first phase of a competition"),
    # --- the queue (base_unpacker.py _unpack_queue; queues/models.py Queue.vhost is a UUIDField)
    ("queue by name", yaml_edit(lambda d: d.update(queue="my-gpu-queue")),
     "queue", "Unpacking the bundle failed. Here is the error log: ['“my-gpu-queue” is not a valid UUID.']"),
    ("queue unquoted", yaml_edit(lambda d: d.update(queue=1234)), "queue", "quote it"),
    # --- tasks and their data (v2.py _unpack_tasks, base_unpacker.py _get_data_key, compute_worker.py _get_bundle)
    ("no tasks", yaml_edit(lambda d: d.pop("tasks")), "tasks", "No tasks listed in this competition"),
    ("task without index", yaml_edit(lambda d: d["tasks"][1].pop("index")),
     "tasks[1].index", "ERROR: No index for task: Final task"),
    ("duplicate task index", yaml_edit(lambda d: d["tasks"][1].update(index=0)),
     "tasks[1].index", "ERROR: Duplicate task indexes. Index: 0"),
    ("task without scoring program", yaml_edit(lambda d: d["tasks"][1].pop("scoring_program")),
     "tasks[1].scoring_program", 'ERROR: Task "Final task" does not have a scoring program'),
    ("task key not a UUID", yaml_edit(lambda d: d["tasks"][1].update(key="final")),
     "tasks[1].key", "['“final” is not a valid UUID.']"),
    ("missing reference data", member("reference_data/final_hr.zip", None),
     "tasks[1].reference_data", 'Cannot find dataset: "reference_data/final_hr.zip"'),
    ("reference data not a zip", member("reference_data/final_hr.zip", b"plain bytes"),
     "tasks[1].reference_data", "Bad or empty zip file"),
    ("ingestion program without a command", member("ingestion_program/metadata.yaml", b"description: x\n"),
     "tasks[1].ingestion_program", "Program directory missing 'command' in metadata"),
    ("ingestion program without metadata",
     lambda f: (f.pop("ingestion_program/metadata.yaml"), f.update({"ingestion_program/notes.txt": b"x"})),
     "tasks[1].ingestion_program", "Program directory missing 'metadata.yaml/metadata'"),
    ("scoring program without a command", member("scoring_program/metadata.yaml", b"command: ''\n"),
     "tasks[1].scoring_program", "has no 'command:'; Codabench would not know how to run the program"),
    ("a task field nothing reads", yaml_edit(lambda d: d["tasks"][0].update(reference="x")),
     "tasks[0].reference", "it would be ignored; did you mean 'reference_data'?"),
    ("solution without path", yaml_edit(lambda d: d.update(solutions=[{"index": 0, "tasks": [0], "name": "s"}])),
     "solutions[0].path", 'Solution s missing "path"'),
    # --- logo, terms, pages (base_unpacker.py _unpack_image/_read_image, v2.py _unpack_terms/_unpack_pages,
    #     api/fields.py NamedBase64ImageField)
    ("no image key", yaml_edit(lambda d: d.pop("image")),
     "image", "An image for this competition could not be found in the yaml"),
    ("image file missing", member("logo.png", None), "image", "Unable to find image: logo.png"),
    ("logo not an image", member("logo.png", b"BM not a supported picture"),
     "image", "The type of the image couldn't be determined."),
    ("logo damaged", member("logo.png", b"\x89PNG\r\n\x1a\n" + bytes(40)), "image", "Please upload a valid image."),
    ("no terms key", yaml_edit(lambda d: d.pop("terms")),
     "terms", "A file containing the terms of this competition has not been supplied in the required location"),
    ("empty terms", member("pages/terms.md", b""), "terms", "pages/terms.md is empty, it must contain content."),
    ("empty page", member("pages/overview.md", b""),
     "pages[0].file", "Page 'pages/overview.md' is empty, it must contain content."),
    ("page file missing", yaml_edit(lambda d: d["pages"][0].update(file="pages/welcome.md")),
     "pages[0].file", "Unable to find page: pages/welcome.md"),
    ("page without file", yaml_edit(lambda d: d["pages"][0].pop("file")), "pages[0].file", "error log: 'file'"),
    ("no pages", yaml_edit(lambda d: d.pop("pages")), "pages", "'NoneType' object is not iterable"),
    ("page not UTF-8", member("pages/overview.md", "Überblick".encode("latin-1")), "pages[0].file", "not UTF-8"),
    # --- competition fields (tasks.py unpack_competition, competitions/models.py, serializers/competitions.py)
    ("no version", yaml_edit(lambda d: d.pop("version")), "version", "must be 2"),
    ("another version", yaml_edit(lambda d: d.update(version=3)),
     "version", "A suitable version could not be found for this competition."),
    ("title too long", yaml_edit(lambda d: d.update(title="x" * 257)),
     "title", "Ensure this field has no more than 256 characters."),
    ("docker image too long", yaml_edit(lambda d: d.update(docker_image="r/" + "x" * 130)),
     "docker_image", "Ensure this field has no more than 128 characters."),
    ("bad contact email", yaml_edit(lambda d: d.update(contact_email="organisers")),
     "contact_email", "Enter a valid email address."),
    ("bad competition type", yaml_edit(lambda d: d.update(competition_type="challenge")),
     "competition_type", '"challenge" is not a valid choice.'),
    ("bad fact sheet", yaml_edit(lambda d: d.update(fact_sheet={"team": {"key": "team", "type": "text"}})),
     "fact_sheet.team", "values for team"),
    ("unknown top-level key", yaml_edit(lambda d: d.update(leaderboard=[])),
     "leaderboard", "it would be ignored; did you mean 'leaderboards'?"),
    # --- leaderboards (v2.py _unpack_leaderboards, serializers/leaderboards.py, leaderboards/models.py)
    ("no leaderboards", yaml_edit(lambda d: d.pop("leaderboards")),
     "leaderboards", "Could not find leaderboards in the competition yaml"),
    ("empty leaderboards", yaml_edit(lambda d: d.update(leaderboards=[])), "leaderboards", "list index out of range"),
    ("no columns", yaml_edit(lambda d: _board(d).update(columns=[])),
     "leaderboards[0].columns", "Leaderboards require at least 1 column"),
    ("duplicate column index", yaml_edit(lambda d: _col(d, 8).update(index=0)),
     "leaderboards[0].columns[8].index", "Columns must have unique indexes!"),
    ("duplicate column key", yaml_edit(lambda d: _col(d, 8).update(key="psnr_valid")),
     "leaderboards[0].columns[8].key", "Columns must have unique keys!"),
    ("column title too long", yaml_edit(lambda d: _col(d, 0).update(title="PSNR on the DIV2K and LSDIR valid set")),
     "leaderboards[0].columns[0].title", "Ensure this field has no more than 36 characters."),
    ("leaderboard title too long", yaml_edit(lambda d: _board(d).update(title="R" * 65)),
     "leaderboards[0].title", "Ensure this field has no more than 64 characters."),
    ("leaderboard without key", yaml_edit(lambda d: _board(d).pop("key")),
     "leaderboards[0].key", "This field is required."),
    ("bad sorting", yaml_edit(lambda d: _col(d, 0).update(sorting="ascending")),
     "leaderboards[0].columns[0].sorting", '"ascending" is not a valid choice.'),
    ("bad submission rule", yaml_edit(lambda d: _board(d).update(submission_rule="Best")),
     "leaderboards[0].submission_rule", '"Best" is not a valid choice.'),
    ("primary index of no column", yaml_edit(lambda d: _board(d).update(primary_index=42)),
     "leaderboards[0].primary_index", "42 is not the index of a column"),
]

_COMPUTED = {"title": "Mean PSNR", "key": "psnr_mean", "index": 9, "sorting": "desc"}
COMPUTATION_CASES = [
    ("unknown computation", {"computation": "mean", "computation_indexes": [0, 1]}, '"mean" is not a valid choice.'),
    ("computation without columns", {"computation": "avg"},
     "Column with computation must have at least 1 column selected for the computation to act upon"),
    ("columns without computation", {"computation_indexes": [0, 1]},
     "Cannot add computation columns without a computation function set"),
    ("self reference", {"computation": "avg", "computation_indexes": [0, 9]},
     "Column with index 9 referencing itself. Cannot self-reference, must be other columns."),
    ("no such column", {"computation": "avg", "computation_indexes": [0, 42]},
     "Column index 42 does not exist in available indexes [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
    ("indexes as a string", {"computation": "avg", "computation_indexes": "0,1"},
     "Bad value for index, should be an integer but received: ."),
]


@pytest.mark.parametrize(("edit", "where", "reason"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bundle_breaking_a_rule_is_refused_with_codabenchs_reason(complete: Files, tmp_path: Path, edit, where: str,
                                                                    reason: str) -> None:
    files = dict(complete)
    edit(files)
    problems = validate_bundle(_zip(files, tmp_path / "broken.zip"))
    hits = [p for p in problems if p.startswith(f"{where}:") and reason in p]
    assert hits, problems
    assert all("\n" not in p for p in problems)


@pytest.mark.parametrize(("extra", "reason"), [case[1:] for case in COMPUTATION_CASES],
                         ids=[case[0] for case in COMPUTATION_CASES])
def test_column_computations(complete: Files, tmp_path: Path, extra: dict, reason: str) -> None:
    files = dict(complete)
    yaml_edit(lambda d: _board(d)["columns"].append(_COMPUTED | extra))(files)
    problems = validate_bundle(_zip(files, tmp_path / "broken.zip"))
    assert [p for p in problems if p.startswith("leaderboards[0].columns[9].") and reason in p], problems


def test_score_keys_must_match_the_columns(complete: Files, tmp_path: Path) -> None:
    files = dict(complete)
    yaml_edit(lambda d: _board(d)["columns"].pop())(files)  # flops_g: the scoring program writes it, no column takes it
    assert validate_bundle(_zip(files, tmp_path / "b.zip")) == [
        "scores.json key 'flops_g': matches no leaderboard column; Codabench would drop it silently"]
    assert COLUMNS[-1].key == "flops_g"


def test_unreadable_bundles_are_refused_with_codabenchs_reason(complete: Files, tmp_path: Path) -> None:
    (tmp_path / "not.zip").write_text("hello")
    with pytest.raises(BundleError, match="Codabench says: Bad zip file uploaded."):
        validate_bundle(tmp_path / "not.zip")
    nested = _zip({f"b/{name}": content for name, content in complete.items()}, tmp_path / "nested.zip")
    with pytest.raises(BundleError, match="competition.yaml is missing from zip, check your folder structure"):
        validate_bundle(nested)


def test_without_a_queue_the_time_limit_cap_is_a_warning(complete: Files, tmp_path: Path) -> None:
    files = dict(complete)
    yaml_edit(lambda d: d.pop("queue"))(files)
    report = check_bundle(_zip(files, tmp_path / "b.zip"))
    assert report.problems == []
    assert report.warnings == [
        ("phases[1].execution_time_limit: 3600 s, but without a queue Codabench cuts it to its default queue's limit "
         "(600 s unless the site sets MAX_EXECUTION_TIME_LIMIT otherwise); set queue to your own queue's vhost"),
        ("queue: none, so submitted code runs on Codabench's default workers, which need not have a GPU; set queue "
         "to the vhost of a GPU queue you own or organise (it serves every phase)"),
    ]


TIMES = {"dates": ["--dev-start", "2026-01-20", "--test-start", "2026-03-14", "--test-end", "2026-03-21"],
         "times of day": ["--dev-start", "2026-01-20 09:00", "--test-start", "2026-03-14 12:00",
                          "--test-end", "2026-03-21 18:00:30"],
         "placeholders": []}


@pytest.mark.parametrize("edition", sorted(preset_editions()))
@pytest.mark.parametrize("queue", [None, QUEUE], ids=["no queue", "queue"])
@pytest.mark.parametrize("times", sorted(TIMES))
@pytest.mark.parametrize("lock", ["--lock-phases", "--no-lock-phases"])
def test_every_bundle_the_cli_writes_passes(tmp_path: Path, edition: str, queue: str | None, times: str,
                                            lock: str) -> None:
    """Whatever the options, the bundle is one Codabench accepts, and it reads every phase time as given."""
    wheel = tmp_path / f"ntire_bench-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"stand-in")
    out = tmp_path / "bundle.zip"
    args = ["codabench", "bundle", "--out", str(out), "--wheel", str(wheel), "--edition", edition, lock, *TIMES[times]]
    result = CliRunner().invoke(main, args + (["--queue", queue] if queue else []))
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files.update({name: _data_zip() for name in organiser_data_files(BundleSpec())})
    report = check_bundle(_zip(files, tmp_path / "complete.zip"))
    assert report.problems == []
    assert len(report.warnings) == (0 if queue else 2)
    phases = yaml.safe_load(files["competition.yaml"])["phases"]
    read = [codabench_time(phase[key])[0] for phase in phases for key in ("start", "end")]
    given = TIMES[times][1::2] or ["2026-01-20", "2026-03-14", "2026-03-21"]
    expected = [datetime.fromisoformat(t) for t in given]
    assert read == [expected[0], expected[1] - timedelta(seconds=1), expected[1], expected[2]]
