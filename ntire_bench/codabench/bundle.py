"""Codabench competition bundle: generate one for an NTIRE-style ESR challenge, and check one.

The bundle follows Codabench's v2 ``competition.yaml`` format. A development phase takes
uploads of SR images for the validation LR set and scores their PSNR; a final phase takes
code, which an ingestion program runs, and ranks by ``Score_Final``. Both programs are thin
``metadata.yaml`` files that call this harness inside the competition's docker image.

Codabench facts this module relies on (from its documentation and its v2 unpacker):
every phase is attached to the *first* leaderboard; ``scores.json`` keys that match no
column are dropped silently; a column with ``computation`` is filled by Codabench and must
not be written; column titles and keys are at most 36 characters; phases must not overlap
and every phase but the last needs an end; times are read as UTC (an offset is discarded).

The harness never bundles ground truth: the organiser adds the HR reference zips (and the
LR input zips of code phases) named by :func:`organiser_data_files`. An edition given as a
YAML file is copied into each program folder as ``edition.yaml`` (the programs run there).
The programs themselves are in codabench.py and codabench_ingest.py, the bundle's pages in codabench_pages.py and the
checker in codabench_validate.py; docs/codabench.md is the organiser's guide.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ntire_bench.util.version import __version__
from ntire_bench.scoring.editions import Edition, EditionError, load_edition

RESULTS_PHASE = "results"  # participants upload SR images
CODE_PHASE = "code"  # participants upload code that the ingestion program runs
PHASE_KINDS = (RESULTS_PHASE, CODE_PHASE)

VALID_DATASET = "DIV2K_LSDIR_valid"
TEST_DATASET = "DIV2K_LSDIR_test"
DEFAULT_EDITION = "ntire2026"
DEFAULT_DOCKER_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
DEFAULT_SCORING_COMMAND = "ntire-bench codabench score --input /app/input --output /app/output --edition {edition}"
DEFAULT_INGESTION_COMMAND = (
    "ntire-bench codabench ingest --submission /app/ingested_program --input /app/input_data --output /app/output"
)
SCORING_PROGRAM_DIR = "scoring_program"
RESULTS_SCORING_PROGRAM_DIR = "scoring_program_results"  # with lock_phases: the results phases' own program
INGESTION_PROGRAM_DIR = "ingestion_program"
LEADERBOARD_KEY = "main"

# Limits and choices of Codabench's models and serializers.
MAX_COLUMN_TITLE = 36
MAX_COLUMN_KEY = 36
MAX_LEADERBOARD_TITLE = 64
MAX_LEADERBOARD_KEY = 36
SORTINGS = ("asc", "desc")
COMPUTATIONS = ("sum", "avg", "min", "max")
SUBMISSION_RULES = ("Add", "Add_And_Delete", "Add_And_Delete_Multiple", "Force_Last", "Force_Latest_Multiple", "Force_Best")


class _PlainDumper(yaml.SafeDumper):
    """Writes a repeated value (a phase end that is the next start) in full, never as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class BundleError(ValueError):
    """A bundle cannot be generated or read; the message is one line saying what to fix."""


@dataclass(frozen=True)
class LeaderboardColumn:
    """One leaderboard column: its ``key`` is the ``scores.json`` key the scoring program writes."""

    key: str
    title: str
    sorting: str
    precision: int
    meaning: str


LEADERBOARD_COLUMNS: tuple[LeaderboardColumn, ...] = (
    LeaderboardColumn("psnr_valid", "PSNR valid (dB)", "desc", 2, f"RGB PSNR on {VALID_DATASET}"),
    LeaderboardColumn("psnr_test", "PSNR test (dB)", "desc", 2, f"RGB PSNR on {TEST_DATASET}"),
    LeaderboardColumn("score_final", "Score_Final", "asc", 4, "weighted sum of the three scores below; lower is better"),
    LeaderboardColumn("score_runtime", "Runtime score", "asc", 4, "exp(2 * runtime / baseline runtime)"),
    LeaderboardColumn("score_flops", "FLOPs score", "asc", 4, "exp(2 * FLOPs / baseline FLOPs)"),
    LeaderboardColumn("score_params", "Params score", "asc", 4, "exp(2 * params / baseline params)"),
    LeaderboardColumn("runtime_ms", "Runtime (ms)", "asc", 2, "mean per-image runtime, milliseconds"),
    LeaderboardColumn("params_m", "Params (M)", "asc", 4, "parameters, millions"),
    LeaderboardColumn("flops_g", "FLOPs (G)", "asc", 2, "FLOPs for one 256x256 LR input, billions"),
)
# The keys the scoring program may write to scores.json: exactly the leaderboard's columns.
SCORE_KEYS: tuple[str, ...] = tuple(column.key for column in LEADERBOARD_COLUMNS)
PRIMARY_SCORE_KEY = "score_final"
# Which dataset's RGB PSNR each PSNR column shows; reference folders are named after these datasets.
PSNR_COLUMNS: dict[str, str] = {"psnr_valid": VALID_DATASET, "psnr_test": TEST_DATASET}
# A custom edition file travels inside each program folder under this name (the programs run there).
EDITION_FILE = "edition.yaml"
# What the scoring program writes for a column it has no value for (Codabench cannot store null).
NOT_RANKED_VALUE = 1e9  # asc columns: sorts last; real scores are capped here
NO_PSNR_VALUE = 0.0  # PSNR columns


@dataclass(frozen=True)
class PhaseSpec:
    """One competition phase: SR-image uploads (``results``) or code run by ingestion (``code``).

    ``datasets`` are the sets the phase scores; their HR images are the phase's reference
    data and, for a code phase, their LR images its input data. Times are UTC.
    """

    name: str
    kind: str
    start: datetime
    end: datetime | None
    datasets: tuple[str, ...]
    description: str = ""
    max_submissions_per_day: int = 5
    max_submissions: int = 100
    execution_time_limit_s: int = 600

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "phase"


def ntire_phases(
    dev_start: datetime = datetime(2026, 1, 20),
    test_start: datetime = datetime(2026, 3, 14),
    test_end: datetime = datetime(2026, 3, 21),
    valid_dataset: str = VALID_DATASET,
    test_dataset: str = TEST_DATASET,
) -> tuple[PhaseSpec, PhaseSpec]:
    """The two NTIRE ESR phases: SR uploads on the validation set, then code on valid + test.

    The default dates are placeholders for the organiser to replace.
    """
    development = PhaseSpec(
        name="Development",
        kind=RESULTS_PHASE,
        start=dev_start,
        end=test_start,
        datasets=(valid_dataset,),
        description=f"Upload the x4 SR outputs of the {valid_dataset} LR images; scored by PSNR.",
        max_submissions_per_day=5,
        max_submissions=100,
        execution_time_limit_s=600,
    )
    final = PhaseSpec(
        name="Final",
        kind=CODE_PHASE,
        start=test_start,
        end=test_end,
        datasets=(valid_dataset, test_dataset),
        description="Upload your code and weights; we run it, time it and rank it by Score_Final.",
        max_submissions_per_day=2,
        max_submissions=10,
        execution_time_limit_s=3600,
    )
    return development, final


@dataclass(frozen=True)
class BundleSpec:
    """Everything ``write_bundle`` needs. ``{edition}`` in a command becomes ``edition``.

    ``harness_requirement`` is pip-installed in the container before each program runs
    (that needs network on the compute worker); set it to None when ``docker_image``
    already contains the harness.
    """

    title: str = "NTIRE 2026 Efficient Super-Resolution Challenge (x4)"
    description: str = (
        "Design an x4 super-resolution network that keeps the baseline's PSNR while running "
        "faster and using fewer FLOPs and parameters."
    )
    edition: str = DEFAULT_EDITION
    phases: tuple[PhaseSpec, ...] = field(default_factory=ntire_phases)
    columns: tuple[LeaderboardColumn, ...] = LEADERBOARD_COLUMNS
    primary_key: str = PRIMARY_SCORE_KEY
    docker_image: str = DEFAULT_DOCKER_IMAGE
    harness_requirement: str | None = f"ntire-bench=={__version__}"
    scoring_command: str = DEFAULT_SCORING_COMMAND
    ingestion_command: str = DEFAULT_INGESTION_COMMAND
    submission_rule: str = "Force_Last"
    contact_email: str | None = None
    queue: str | None = None
    scale: int = 4
    # One scoring program per phase kind, each told its phase (--phase results|code), so an upload to a
    # results phase can never pass itself off as an ingestion's output. Off: one program guesses the phase.
    lock_phases: bool = True


# --------------------------------------------------------------------------- generation
_PAGES = (("overview", "Overview"), ("evaluation", "Evaluation"), ("submission", "Submission"), ("terms", "Terms"))


def program_command(command: str, requirement: str | None) -> str:
    """The ``metadata.yaml`` command: ``command`` itself, or a ``sh -c`` that pip-installs first.

    Codabench hands the string to docker, which splits it like a shell but runs no shell,
    so chaining two steps needs an explicit ``sh -c``.
    """
    if not requirement:
        return command
    inner = f"python -m pip install --quiet --no-cache-dir {shlex.quote(requirement)} && exec {command}"
    return f"sh -c {shlex.quote(inner)}"


def organiser_data_files(spec: BundleSpec) -> list[str]:
    """Bundle paths that ``competition.yaml`` names but the organiser must add (ground truth, LR inputs)."""
    paths = []
    for phase in spec.phases:
        paths.append(reference_path(phase))
        if phase.kind == CODE_PHASE:
            paths.append(input_path(phase))
    return paths


def scoring_program_dir(spec: BundleSpec, phase: PhaseSpec) -> str:
    """The bundle folder of the scoring program that ``phase``'s task runs."""
    return RESULTS_SCORING_PROGRAM_DIR if spec.lock_phases and phase.kind == RESULTS_PHASE else SCORING_PROGRAM_DIR


def _scoring_programs(spec: BundleSpec) -> dict[str, str]:
    """Each scoring program folder the bundle holds, with its command."""
    programs = {}
    for phase in spec.phases:
        folder = scoring_program_dir(spec, phase)
        suffix = f" --phase {phase.kind}" if spec.lock_phases and "--phase" not in spec.scoring_command else ""
        programs[folder] = spec.scoring_command + suffix
    return programs


def reference_path(phase: PhaseSpec) -> str:
    return f"reference_data/{phase.slug}_hr.zip"


def input_path(phase: PhaseSpec) -> str:
    return f"input_data/{phase.slug}_lr.zip"


def edition_is_file(edition: str) -> bool:
    """Whether ``edition`` names an edition YAML file rather than a preset (as ``load_edition`` decides)."""
    path = Path(edition)
    return path.suffix.lower() in (".yaml", ".yml") or path.is_file()


def edition_argument(spec: BundleSpec) -> str:
    """What the programs' ``--edition`` says: the preset's name, or the bundled copy of an edition file."""
    return EDITION_FILE if edition_is_file(spec.edition) else spec.edition


def _check_spec(spec: BundleSpec) -> Edition:
    try:
        edition = load_edition(spec.edition)
    except EditionError as exc:
        raise BundleError(f"BundleSpec.edition: {exc}") from None
    if not spec.phases:
        raise BundleError("BundleSpec.phases: empty; give at least one phase (see ntire_phases())")
    slugs = [phase.slug for phase in spec.phases]
    for phase in spec.phases:
        if phase.kind not in PHASE_KINDS:
            raise BundleError(f"phase '{phase.name}': kind {phase.kind!r} is not one of {', '.join(PHASE_KINDS)}")
        if not phase.datasets:
            raise BundleError(f"phase '{phase.name}': datasets is empty; name the sets it scores")
        if slugs.count(phase.slug) > 1:
            raise BundleError(f"phase '{phase.name}': another phase has the same name once lower-cased; rename one")
    keys = [column.key for column in spec.columns]
    if spec.primary_key not in keys:
        raise BundleError(f"BundleSpec.primary_key: {spec.primary_key!r} is not a column key ({', '.join(keys)})")
    return edition


def competition_yaml(spec: BundleSpec) -> dict[str, Any]:
    """The ``competition.yaml`` content for ``spec``, as a plain dict."""
    tasks = []
    phases = []
    for index, phase in enumerate(spec.phases):
        task: dict[str, Any] = {
            "index": index,
            "name": f"{phase.name} task",
            "description": f"Scores {', '.join(phase.datasets)} (x{spec.scale}).",
            "scoring_program": scoring_program_dir(spec, phase),
            "reference_data": reference_path(phase),
        }
        if phase.kind == CODE_PHASE:
            task["ingestion_program"] = INGESTION_PROGRAM_DIR
            task["input_data"] = input_path(phase)
        tasks.append(task)
        phases.append({
            "index": index,
            "name": phase.name,
            "description": phase.description,
            "start": phase.start,
            "end": phase.end,
            "max_submissions_per_day": phase.max_submissions_per_day,
            "max_submissions": phase.max_submissions,
            "execution_time_limit": phase.execution_time_limit_s,
            "accepts_only_result_submissions": phase.kind == RESULTS_PHASE,
            "tasks": [index],
        })
        if phase.end is None:
            del phases[-1]["end"]
    columns = [
        {"title": c.title, "key": c.key, "index": i, "sorting": c.sorting, "precision": c.precision, "hidden": False}
        for i, c in enumerate(spec.columns)
    ]
    primary_index = [c.key for c in spec.columns].index(spec.primary_key)
    data: dict[str, Any] = {
        "version": 2,
        "title": spec.title,
        "description": spec.description,
        "image": "logo.png",
        "terms": "pages/terms.md",
        "docker_image": spec.docker_image,
        "registration_auto_approve": False,
        "make_programs_available": True,
        "make_input_data_available": False,
        "enable_detailed_results": True,
    }
    if spec.contact_email:
        data["contact_email"] = spec.contact_email
    if spec.queue:
        data["queue"] = spec.queue
    data["pages"] = [{"title": title, "file": f"pages/{name}.md"} for name, title in _PAGES]
    data["phases"] = phases
    data["tasks"] = tasks
    data["leaderboards"] = [{
        "title": "Results",
        "key": LEADERBOARD_KEY,
        "submission_rule": spec.submission_rule,
        "primary_index": primary_index,
        "columns": columns,
    }]
    return data


def write_bundle(spec: BundleSpec, out_zip: Path) -> Path:
    """Write the competition bundle zip for ``spec``; return its path.

    The generated ``competition.yaml`` is validated (with ``SCORE_KEYS`` as the scoring
    program's keys) before anything is written; ``BundleError`` lists what is wrong. The
    zip is reproducible: fixed timestamps, sorted members.
    """
    from ntire_bench.codabench.pages import pages_text, readme_text
    from ntire_bench.codabench.validate import validate_competition_yaml

    edition = _check_spec(spec)
    needs_ingestion = any(phase.kind == CODE_PHASE for phase in spec.phases)
    data = competition_yaml(spec)
    files: dict[str, bytes] = {
        "competition.yaml": yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100).encode(),
        "logo.png": make_logo(),
        "README.md": readme_text(spec).encode(),
    }
    for folder, command in _scoring_programs(spec).items():
        files[f"{folder}/metadata.yaml"] = _metadata_yaml(command, spec)
    if needs_ingestion:
        ingestion = spec.ingestion_command
        if spec.edition != DEFAULT_EDITION and "{edition}" not in ingestion:
            ingestion += " --edition {edition}"  # its timing passes (runs) follow the edition
        files[f"{INGESTION_PROGRAM_DIR}/metadata.yaml"] = _metadata_yaml(ingestion, spec)
    if edition_is_file(spec.edition):
        edition_text = Path(spec.edition).read_bytes()
        for program in [*_scoring_programs(spec), *([INGESTION_PROGRAM_DIR] if needs_ingestion else [])]:
            files[f"{program}/{EDITION_FILE}"] = edition_text
    for name, text in pages_text(spec, edition).items():
        files[f"pages/{name}.md"] = text.encode()

    written_back = yaml.safe_load(files["competition.yaml"])
    problems = validate_competition_yaml(written_back, SCORE_KEYS, set(files) | set(organiser_data_files(spec)))
    if problems:
        raise BundleError(f"the generated competition.yaml is invalid: {'; '.join(problems)}")

    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_zip.name}.", dir=out_zip.parent)
    try:
        with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name])
        os.replace(tmp_name, out_zip)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out_zip


def _metadata_yaml(command: str, spec: BundleSpec) -> bytes:
    resolved = program_command(command.replace("{edition}", shlex.quote(edition_argument(spec))),
                               spec.harness_requirement)
    return yaml.safe_dump({"command": resolved}, sort_keys=False, width=1000).encode()


def make_logo(size: int = 96) -> bytes:
    """A small PNG logo: a smooth colour field with a 4x4 pixel grid over its left half (x4 SR)."""
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    yy, xx = np.meshgrid(ramp, ramp, indexing="ij")
    rgb = np.stack([40 + 180 * xx, 90 + 120 * yy, 200 - 120 * xx * yy], axis=-1)
    coarse = rgb[::16, ::16].repeat(16, axis=0).repeat(16, axis=1)[:size, :size]
    rgb[:, : size // 2] = coarse[:, : size // 2]
    rgb[:, size // 2 - 1 : size // 2 + 1] = 255
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]).astype(np.uint8))
    if not ok:  # pragma: no cover - OpenCV always encodes a small uint8 array
        raise BundleError("OpenCV could not encode the logo PNG")
    return buf.tobytes()


__all__ = [
    "CODE_PHASE",
    "EDITION_FILE",
    "LEADERBOARD_COLUMNS",
    "NOT_RANKED_VALUE",
    "NO_PSNR_VALUE",
    "PRIMARY_SCORE_KEY",
    "PSNR_COLUMNS",
    "RESULTS_PHASE",
    "SCORE_KEYS",
    "BundleError",
    "BundleSpec",
    "LeaderboardColumn",
    "PhaseSpec",
    "competition_yaml",
    "scoring_program_dir",
    "edition_argument",
    "edition_is_file",
    "make_logo",
    "ntire_phases",
    "organiser_data_files",
    "program_command",
    "write_bundle",
]
