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
The programs themselves are in codabench.py; docs/codabench.md is the organiser's guide.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import shlex
import tempfile
import uuid
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
import yaml

from . import __version__
from .editions import Edition, EditionError, load_edition

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
        paths.append(_reference_path(phase))
        if phase.kind == CODE_PHASE:
            paths.append(_input_path(phase))
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


def _reference_path(phase: PhaseSpec) -> str:
    return f"reference_data/{phase.slug}_hr.zip"


def _input_path(phase: PhaseSpec) -> str:
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
            "reference_data": _reference_path(phase),
        }
        if phase.kind == CODE_PHASE:
            task["ingestion_program"] = INGESTION_PROGRAM_DIR
            task["input_data"] = _input_path(phase)
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
    edition = _check_spec(spec)
    needs_ingestion = any(phase.kind == CODE_PHASE for phase in spec.phases)
    data = competition_yaml(spec)
    files: dict[str, bytes] = {
        "competition.yaml": yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100).encode(),
        "logo.png": make_logo(),
        "README.md": _readme(spec).encode(),
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
    for name, text in _pages(spec, edition).items():
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


# --------------------------------------------------------------------------- pages

_PAGES = (("overview", "Overview"), ("evaluation", "Evaluation"), ("submission", "Submission"), ("terms", "Terms"))


def _when(moment: datetime | None) -> str:
    return "open-ended" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _thresholds_text(edition: Edition) -> str:
    if edition.thresholds_from_results or not edition.thresholds:
        return "the PSNR threshold the organisers announce for each set"
    return ", ".join(f"{db:.2f} dB on {name}" for name, db in edition.thresholds.items())


def _pages(spec: BundleSpec, edition: Edition) -> dict[str, str]:
    phase_lines = []
    for phase in spec.phases:
        what = ("upload the SR outputs (PNG) of the LR images; the leaderboard shows PSNR"
                if phase.kind == RESULTS_PHASE else
                "upload your code and weights; we run them on our GPU, measure PSNR, runtime, FLOPs "
                "and parameters, and rank by Score_Final")
        phase_lines.append(f"- **{phase.name}** ({_when(phase.start)} to {_when(phase.end)}), "
                           f"{', '.join(phase.datasets)}: {what}.")
    weights = edition.weights
    runtime_on = (f"averaged over {' and '.join(edition.runtime_datasets)}" if edition.runtime_datasets
                  else "over the scored sets")
    not_ranked, no_psnr = f"{NOT_RANKED_VALUE:.0f}", f"{NO_PSNR_VALUE:g}"
    column_rows = "\n".join(f"| {c.title} | `{c.key}` | {'lower' if c.sorting == 'asc' else 'higher'} | {c.meaning} |"
                            for c in spec.columns)
    overview = f"""# {spec.title}

{spec.description}

Super-resolve low-resolution images by x{spec.scale}. A network is eligible when its PSNR
reaches {_thresholds_text(edition)}; eligible networks are ranked by how little runtime,
FLOPs and parameters they need compared with the baseline (`{edition.baseline}`).

## Phases

{chr(10).join(phase_lines)}

All times are UTC. Scoring reproduces the official NTIRE Efficient SR evaluation code
(harness: ntire-bench {__version__}, scoring edition `{spec.edition}`).
"""
    evaluation = f"""# Evaluation

## Quality

PSNR is computed on RGB, in dB, between your x{spec.scale} output and the HR image, after
rounding both to 8 bits and dropping {spec.scale} pixels on every side, exactly as the
official NTIRE code does. SSIM is reported in the detailed results. A submission is eligible
only if its PSNR reaches {_thresholds_text(edition)}.

## Efficiency (code phases)

- **Runtime**: mean per-image runtime {runtime_on}, on the organisers' GPU. The baseline
  is timed on the same worker in the same job (or, when the organisers ship its figures,
  on the same GPU model with the same harness and settings), so the comparison is fair.
- **FLOPs** for one 256x256 LR input, and **parameters**, counted like the official code.

Each is turned into a score against the baseline `{edition.baseline}`, and the scores are
combined with weights {weights['runtime']:g} / {weights['flops']:g} / {weights['params']:g}:

```
Score_Runtime = exp(2 * runtime / runtime_baseline)
Score_FLOPs   = exp(2 * FLOPs   / FLOPs_baseline)
Score_Params  = exp(2 * params  / params_baseline)
Score_Final   = {weights['runtime']:g} * Score_Runtime + {weights['flops']:g} * Score_FLOPs + {weights['params']:g} * Score_Params
```

Lower is better; the baseline scores exp(2) = 7.389. Codabench's own column arithmetic can
only sum, average or take the min or max of columns, so it cannot compute these
exp-weighted scores: the scoring program computes `Score_Final` and every score column
itself. A submission under the PSNR threshold is listed with Score_Final {not_ranked}
(not ranked), below every eligible one; its detailed results give the score it would have
had and the reason.

## Leaderboard

The leaderboard is sorted by Score_Final (ascending), ties by the columns from left to right.
The development phase measures only PSNR: every column it does not measure shows
{not_ranked} ({no_psnr} for a PSNR column), so it is ranked by PSNR valid (descending).

| column | key | better | meaning |
|---|---|---|---|
{column_rows}
"""
    submission = f"""# Submission

## Development phase: SR images

Upload a zip of PNG files, one per LR input, named after it: `0801x{spec.scale}.png` (or
the HR name, `0801.png`). The images may sit at the root of the zip or inside one folder.
Each must be an 8-bit RGB PNG (no alpha, not greyscale, not 16-bit) of exactly x{spec.scale} the LR
size. JPEG and other formats are refused: compression changes the pixels and the PSNR.
Nested folders, zips inside the zip, links and encrypted zips are refused. Every problem
is reported in the scoring log, one line per file.

## Final phase: code

Upload a zip with your model code and its weights: at its top level a `submission.py`
declaring `SUBMISSION = Submission(...)` (see `ntire_bench.plugins`), or an NTIRE team
declaration `submission.yaml`, with the weights file it names next to it, any other
modules in sub-folders, and a file named `metadata` holding `description: <your model>` and
no command (the organisers' ingestion program runs your code). It runs in `{spec.docker_image}` with ntire-bench installed, in the
harness's sandbox, and sees only the LR images; the HR images never enter that container.

## When a submission cannot be scored

It is marked Failed (and does not count as a scored submission). The scoring log says why
in one line; the detailed results list every problem, one line per file.
"""
    terms = f"""# Terms

- One account per team; teams may not share code or results during the challenge.
- The final ranking uses the organisers' measurements on their hardware; the organisers
  may re-run, inspect or disqualify any submission.
- Winning teams must submit a fact sheet and their code for the challenge report.
- Training on the validation or test HR images is forbidden.
- Participants agree to the NTIRE challenge rules published with {spec.title}.
"""
    return {"overview": overview, "evaluation": evaluation, "submission": submission, "terms": terms}


def _readme(spec: BundleSpec) -> str:
    locked = ("\n- `scoring_program_results/metadata.yaml`: the same with `--phase results`, for the results "
              "phases\n  (`scoring_program/` then says `--phase code`): an upload is never read as an "
              "ingestion's output." if spec.lock_phases else "")
    data_lines = []
    for phase in spec.phases:
        sets = ", ".join(phase.datasets)
        data_lines.append(f"- `{_reference_path(phase)}`: the HR images of {sets} (phase {phase.name}).")
        if phase.kind == CODE_PHASE:
            data_lines.append(f"- `{_input_path(phase)}`: the LR inputs of {sets} (phase {phase.name}).")
    return f"""# Codabench bundle: {spec.title}

Generated by ntire-bench {__version__} (scoring edition `{spec.edition}`).

## What the organiser must add

The harness never bundles ground truth. `competition.yaml` names these files, which you add
to this bundle before uploading it (Codabench refuses the bundle while one is missing):

{chr(10).join(data_lines)}

Inside each zip, put one folder per dataset, named exactly as the dataset, holding the PNG
images with their NTIRE names: `{VALID_DATASET}/0801.png` for HR, `{VALID_DATASET}/0801x{spec.scale}.png`
for LR. Instead of a file you may write the key (UUID) of a dataset already uploaded to
Codabench in `competition.yaml`.

Then unzip this bundle, add the files, and zip the *contents* (not the folder). Check it:

```
python -c "from ntire_bench.codabench_bundle import validate_bundle; print(validate_bundle('bundle.zip') or 'valid')"
```

## Also check

- The phase dates in `competition.yaml` are placeholders unless you set them; times are UTC.
- `docker_image` is `{spec.docker_image}`; pin an image you have tested. The programs
  install `{spec.harness_requirement or 'nothing'}` with pip when they start, which needs network on the
  compute worker; bake the harness into your image instead and regenerate with no requirement.
- Code phases must run on a GPU worker: set `queue` to your GPU queue's vhost.
- The scoring program writes `scores.json` with the leaderboard column keys
  ({', '.join(SCORE_KEYS)}) and `detailed_results.html` (per-image results and problems). A
  run that writes no `scores.json` is marked Failed: that is how a bad submission fails
  (exit 1, one line on stderr) and how a setup problem shows (exit 2).
- Code phases need the baseline's figures for Score_Final: add its plugin and weights as
  `baseline/` inside the LR input zip (timed in the same job: fairest), or its results file,
  measured on the same GPU model with the same image and settings, as `baseline.json` in the
  HR reference zip.
- The worker writes its own `metadata` file into each output folder, so the programs never
  write one.
- Only the first leaderboard is attached to the phases, and a column with `computation`
  is filled by Codabench: `Score_Final` is therefore computed by the scoring program.

## Contents

- `competition.yaml`, `logo.png`, `pages/*.md`
- `scoring_program/metadata.yaml`: runs `ntire-bench codabench score` on `/app/input/ref`
  (HR) and `/app/input/res` (SR images or the ingestion's output), writes to `/app/output`.{locked}
- `ingestion_program/metadata.yaml`: runs `ntire-bench codabench ingest` on the submitted
  code (`/app/ingested_program`) and the LR inputs (`/app/input_data`).

docs/codabench.md (in the ntire-bench repository) describes the layouts and exit conventions.
"""


# --------------------------------------------------------------------------- validation

_TOP_LEVEL = {
    "version", "title", "description", "image", "terms", "pages", "phases", "tasks", "solutions",
    "leaderboards", "fact_sheet", "docker_image", "registration_auto_approve", "make_programs_available",
    "make_input_data_available", "queue", "enable_detailed_results", "show_detailed_results_in_submission_panel",
    "show_detailed_results_in_leaderboard", "contact_email", "reward", "auto_run_submissions",
    "can_participants_make_submissions_public", "forum_enabled", "competition_type",
}
_TOP_LEVEL_BOOLS = (
    "registration_auto_approve", "make_programs_available", "make_input_data_available", "enable_detailed_results",
    "show_detailed_results_in_submission_panel", "show_detailed_results_in_leaderboard", "auto_run_submissions",
    "can_participants_make_submissions_public", "forum_enabled",
)
_TOP_LEVEL_STRINGS = ("description", "docker_image", "queue", "contact_email", "reward", "competition_type")
_TASK_FILES = ("scoring_program", "ingestion_program", "input_data", "reference_data")
_PHASE_BOOLS = ("auto_migrate_to_this_phase", "hide_output", "hide_prediction_output", "hide_score_output",
                "accepts_only_result_submissions")
_PHASE_COUNTS = ("max_submissions", "max_submissions_per_day", "execution_time_limit")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _parse_time(value: Any) -> tuple[datetime | None, str | None]:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, f"{value!r} is not a date-time; write YYYY-MM-DD HH:MM:SS (UTC)"
    else:
        return None, f"expected a date-time (YYYY-MM-DD HH:MM:SS, UTC), got {_kind(value)}"
    offset = moment.utcoffset()
    if offset:
        return None, (f"{value} has a UTC offset, which Codabench discards (it reads every time as UTC); "
                      f"write the time in UTC: {(moment - offset).replace(tzinfo=None)}")
    return moment.replace(tzinfo=None), None


def validate_competition_yaml(
    data: Mapping[str, Any],
    score_keys: Collection[str] | None = None,
    bundle_files: Collection[str] | None = None,
) -> list[str]:
    """Check a parsed ``competition.yaml`` against Codabench's v2 format; return the problems.

    An empty list means valid. ``score_keys``, when given, are the ``scores.json`` keys the
    scoring program writes: each must be a column that Codabench does not compute, and each
    such column must be written. ``bundle_files``, when given, are the bundle's member
    paths: every file the YAML names must be among them (a dataset key, a UUID, is also
    accepted where Codabench accepts one). Each problem is one line naming the field.
    """
    if not isinstance(data, Mapping):
        return [f"competition.yaml: the top level must be a mapping of fields (title, phases, ...), got {_kind(data)}"]
    problems: list[str] = []
    add = problems.append

    for key in data:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(str(key), sorted(_TOP_LEVEL), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            add(f"{key}: not a Codabench competition field, it would be ignored{hint}")
    if data.get("version") not in (2, "2"):
        add(f"version: must be 2 (a Codabench v2 bundle), got {data.get('version')!r}")
    for key in ("title", "image", "terms"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            add(f"{key}: required, a non-empty string; got {_kind(data.get(key))}")
    for key in _TOP_LEVEL_STRINGS:
        if key in data and not isinstance(data[key], str):
            add(f"{key}: expected a string, got {_kind(data[key])}")
    for key in _TOP_LEVEL_BOOLS:
        if key in data and not isinstance(data[key], bool):
            add(f"{key}: expected true or false, got {data[key]!r}")
    if isinstance(data.get("docker_image"), str) and (not data["docker_image"].strip() or " " in data["docker_image"].strip()):
        add(f"docker_image: {data['docker_image']!r} is not an image name like owner/image:tag")

    file_refs: list[tuple[str, Any, bool]] = []  # (where, path, a dataset key may stand in)
    for key in ("image", "terms"):
        if isinstance(data.get(key), str):
            file_refs.append((key, data[key], False))
    _check_pages(data.get("pages"), add, file_refs)
    task_indexes = _check_tasks(data.get("tasks"), add, file_refs)
    _check_solutions(data.get("solutions"), task_indexes, add, file_refs)
    _check_phases(data.get("phases"), task_indexes, add, file_refs)
    columns = _check_leaderboards(data.get("leaderboards"), add)
    if score_keys is not None:
        _check_score_keys(columns, score_keys, add)
    _check_file_refs(file_refs, bundle_files, add)
    return problems


def _list_of_mappings(value: Any, where: str, add, required: bool, what: str) -> list[tuple[int, Mapping[str, Any]]]:
    if value is None:
        if required:
            add(f"{where}: missing; {what}")
        return []
    if not isinstance(value, list):
        add(f"{where}: expected a list, got {_kind(value)}")
        return []
    items = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            items.append((i, item))
        else:
            add(f"{where}[{i}]: expected a mapping of fields, got {_kind(item)}")
    return items


def _check_pages(pages: Any, add, file_refs: list) -> None:
    # The documentation calls pages optional, but the v2 unpacker iterates over the field.
    for i, page in _list_of_mappings(pages, "pages", add, True, "the v2 unpacker needs a list; give at least an overview page"):
        where = f"pages[{i}]"
        for key in ("title", "file"):
            if not isinstance(page.get(key), str) or not page[key].strip():
                add(f"{where}.{key}: required, a non-empty string; got {_kind(page.get(key))}")
        if isinstance(page.get("file"), str):
            file_refs.append((f"{where}.file", page["file"], False))


def _check_index(item: Mapping[str, Any], where: str, seen: set, add, label: str) -> Any:
    index = item.get("index")
    if not _is_int(index) or index < 0:
        add(f"{where}.index: required, a non-negative integer; got {index!r}")
        return None
    if index in seen:
        add(f"{where}.index: {index} is used by another {label}; {label} indexes must be unique")
    seen.add(index)
    return index


def _check_tasks(tasks: Any, add, file_refs: list) -> set:
    indexes: set = set()
    for i, task in _list_of_mappings(tasks, "tasks", add, True, "give at least one task with a scoring_program"):
        where = f"tasks[{i}]"
        _check_index(task, where, indexes, add, "task")
        if "key" in task:  # a task already on Codabench; the other fields are ignored
            if not isinstance(task["key"], str) or not _is_uuid(task["key"]):
                add(f"{where}.key: expected the UUID of a task on Codabench, got {task['key']!r}")
            continue
        if not isinstance(task.get("name"), str) or not task["name"].strip():
            add(f"{where}.name: required, a non-empty string; got {_kind(task.get('name'))}")
        if "scoring_program" not in task:
            add(f"{where}.scoring_program: required (a folder or .zip with metadata.yaml); every task needs one")
        for key in _TASK_FILES:
            if key in task:
                if isinstance(task[key], str) and task[key].strip():
                    file_refs.append((f"{where}.{key}", task[key], True))
                else:
                    add(f"{where}.{key}: expected a path in the bundle, got {task[key]!r}")
        if "ingestion_only_during_scoring" in task and not isinstance(task["ingestion_only_during_scoring"], bool):
            add(f"{where}.ingestion_only_during_scoring: expected true or false")
    return indexes


def _check_task_list(value: Any, where: str, task_indexes: set, add) -> None:
    if not isinstance(value, list) or not value:
        add(f"{where}: required, a non-empty list of task indexes; got {value!r}")
        return
    defined = ", ".join(str(t) for t in sorted(task_indexes)) or "none"
    for ref in value:
        if not _is_int(ref) or ref not in task_indexes:
            add(f"{where}: task {ref!r} is not defined in tasks (defined: {defined})")


def _check_solutions(solutions: Any, task_indexes: set, add, file_refs: list) -> None:
    seen: set = set()
    for i, solution in _list_of_mappings(solutions, "solutions", add, False, ""):
        where = f"solutions[{i}]"
        _check_index(solution, where, seen, add, "solution")
        _check_task_list(solution.get("tasks"), f"{where}.tasks", task_indexes, add)
        if "key" not in solution:
            if not isinstance(solution.get("path"), str) or not solution["path"].strip():
                add(f"{where}.path: required, the .zip or folder of the solution; got {_kind(solution.get('path'))}")
            else:
                file_refs.append((f"{where}.path", solution["path"], False))


def _check_phases(phases: Any, task_indexes: set, add, file_refs: list) -> None:
    items = _list_of_mappings(phases, "phases", add, True, "give at least one phase")
    if isinstance(phases, list) and not phases:
        add("phases: empty; give at least one phase")
    seen: set = set()
    timeline = []
    for i, phase in items:
        where = f"phases[{i}]"
        if "index" in phase:
            _check_index(phase, where, seen, add, "phase")
        if not isinstance(phase.get("name"), str) or not phase["name"].strip():
            add(f"{where}.name: required, a non-empty string; got {_kind(phase.get('name'))}")
        _check_task_list(phase.get("tasks"), f"{where}.tasks", task_indexes, add)
        start = end = None
        if "start" not in phase:
            add(f"{where}.start: required (YYYY-MM-DD HH:MM:SS, UTC)")
        else:
            start, error = _parse_time(phase["start"])
            if error:
                add(f"{where}.start: {error}")
        if phase.get("end") is not None:
            end, error = _parse_time(phase["end"])
            if error:
                add(f"{where}.end: {error}")
        if start and end and end <= start:
            add(f"{where}.end: {end} is not after its start {start}")
        for key in _PHASE_COUNTS:
            if key in phase and (not _is_int(phase[key]) or phase[key] <= 0):
                add(f"{where}.{key}: expected a positive integer, got {phase[key]!r}")
        for key in _PHASE_BOOLS:
            if key in phase and not isinstance(phase[key], bool):
                add(f"{where}.{key}: expected true or false, got {phase[key]!r}")
        for key in ("starting_kit", "public_data"):
            if key in phase:
                file_refs.append((f"{where}.{key}", phase[key], True))
        order = phase.get("index", 0) if _is_int(phase.get("index", 0)) else 0
        timeline.append((order, i, phase, start, end))
    # The unpacker orders phases by index (declaration order when absent) and then
    # requires each to end before the next one starts.
    timeline.sort(key=lambda item: item[0])
    if timeline and timeline[0][2].get("auto_migrate_to_this_phase"):
        add(f"phases[{timeline[0][1]}].auto_migrate_to_this_phase: not allowed on the first phase")
    for (_, i, phase, _, end), (_, j, nxt, nxt_start, _) in pairwise(timeline):
        if phase.get("end") is None:
            add(f"phases[{i}].end: missing; every phase except the last needs an end")
        elif end and nxt_start and nxt_start < end:
            add(f"phases[{j}].start: {nxt_start} is before phase '{phase.get('name')}' ends ({end}); phases must not overlap")


def _check_leaderboards(leaderboards: Any, add) -> list[Mapping[str, Any]]:
    items = _list_of_mappings(leaderboards, "leaderboards", add, True,
                              "Codabench refuses a bundle without one (note the plural: 'leaderboards')")
    if isinstance(leaderboards, list) and not leaderboards:
        add("leaderboards: empty; give one leaderboard with its columns")
    if len(items) > 1:
        add(f"leaderboards: {len(items)} given, but Codabench attaches only the first to the phases; merge the columns into one")
    all_columns: list[Mapping[str, Any]] = []
    keys_seen: dict[str, str] = {}
    for i, board in items:
        where = f"leaderboards[{i}]"
        _check_text(board.get("title"), f"{where}.title", MAX_LEADERBOARD_TITLE, add)
        _check_text(board.get("key"), f"{where}.key", MAX_LEADERBOARD_KEY, add)
        rule = board.get("submission_rule")
        if rule is not None and rule not in SUBMISSION_RULES:
            add(f"{where}.submission_rule: {rule!r} is not one of {', '.join(SUBMISSION_RULES)}")
        if "hidden" in board and not isinstance(board["hidden"], bool):
            add(f"{where}.hidden: expected true or false, got {board['hidden']!r}")
        columns = _list_of_mappings(board.get("columns"), f"{where}.columns", add, True, "give at least one column")
        if isinstance(board.get("columns"), list) and not board["columns"]:
            add(f"{where}.columns: empty; a leaderboard needs at least one column")
        indexes: set = set()
        for j, column in columns:
            cwhere = f"{where}.columns[{j}]"
            _check_text(column.get("title"), f"{cwhere}.title", MAX_COLUMN_TITLE, add)
            if _check_text(column.get("key"), f"{cwhere}.key", MAX_COLUMN_KEY, add):
                key = column["key"]
                if key in keys_seen:
                    add(f"{cwhere}.key: '{key}' is also the key of {keys_seen[key]}; column keys must be unique")
                else:
                    keys_seen[key] = cwhere
            _check_index(column, cwhere, indexes, add, "column")
            sorting = column.get("sorting", "desc")
            if sorting not in SORTINGS:
                add(f"{cwhere}.sorting: {sorting!r} is not 'asc' (smaller is better) or 'desc' (larger is better)")
            if "precision" in column and (not _is_int(column["precision"]) or column["precision"] < 0):
                add(f"{cwhere}.precision: expected a non-negative integer of decimals, got {column['precision']!r}")
            if "hidden" in column and not isinstance(column["hidden"], bool):
                add(f"{cwhere}.hidden: expected true or false, got {column['hidden']!r}")
            all_columns.append(column)
        for j, column in columns:
            _check_computation(column, f"{where}.columns[{j}]", indexes, add)
        primary = board.get("primary_index", 0)
        if not _is_int(primary) or primary not in indexes:
            listed = ", ".join(str(x) for x in sorted(indexes)) or "none"
            add(f"{where}.primary_index: {primary!r} is not the index of a column (indexes: {listed})")
    return all_columns


def _check_text(value: Any, where: str, limit: int, add) -> bool:
    if not isinstance(value, str) or not value.strip():
        add(f"{where}: required, a non-empty string; got {_kind(value)}")
        return False
    if len(value) > limit:
        add(f"{where}: {value!r} is {len(value)} characters; Codabench allows at most {limit}")
    return True


def _check_computation(column: Mapping[str, Any], where: str, indexes: set, add) -> None:
    computation = column.get("computation")
    refs = column.get("computation_indexes")
    if computation is None:
        if refs:
            add(f"{where}.computation_indexes: given without a computation; add computation ({', '.join(COMPUTATIONS)})")
        return
    if computation not in COMPUTATIONS:
        add(f"{where}.computation: {computation!r} is not one of {', '.join(COMPUTATIONS)}")
    if not isinstance(refs, list) or not refs:
        add(f"{where}.computation_indexes: required with a computation, a non-empty list of column indexes")
        return
    for ref in refs:
        if not _is_int(ref) or ref not in indexes:
            add(f"{where}.computation_indexes: {ref!r} is not the index of a column of this leaderboard")
        elif ref == column.get("index"):
            add(f"{where}.computation_indexes: the column refers to itself")


def _check_score_keys(columns: Sequence[Mapping[str, Any]], score_keys: Collection[str], add) -> None:
    keyed = [c for c in columns if isinstance(c.get("key"), str)]
    column_keys = [c["key"] for c in keyed]
    computed = {c["key"] for c in keyed if c.get("computation") is not None}
    written = list(dict.fromkeys(score_keys))
    for key in written:
        if key not in column_keys:
            close = difflib.get_close_matches(key, column_keys, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            add(f"scores.json key '{key}': matches no leaderboard column{hint}; Codabench would drop it silently")
        elif key in computed:
            add(f"scores.json key '{key}': that column has a computation, so Codabench fills it; the scoring program must not write it")
    for key in column_keys:
        if key not in computed and key not in written:
            add(f"leaderboard column '{key}': no scores.json key writes it, so it would stay empty; "
                f"write it in the scoring program or remove the column")


def _check_file_refs(refs: list[tuple[str, Any, bool]], bundle_files: Collection[str] | None, add) -> None:
    present: set[str] = set()
    if bundle_files is not None:
        for name in bundle_files:
            parts = PurePosixPath(str(name).strip("/")).parts
            present.update("/".join(parts[: n + 1]) for n in range(len(parts)))
    for where, ref, key_allowed in refs:
        if not isinstance(ref, str) or not ref.strip():
            add(f"{where}: expected a path in the bundle, got {ref!r}")
            continue
        if key_allowed and _is_uuid(ref):
            continue
        path = PurePosixPath(ref.strip())
        if path.is_absolute() or ".." in path.parts or "\\" in ref:
            add(f"{where}: {ref!r} must be a relative path inside the bundle (no leading '/', '..' or backslash)")
            continue
        if bundle_files is not None and str(path).strip("/") not in present:
            also = " (or the UUID key of a dataset already on Codabench)" if key_allowed else ""
            add(f"{where}: '{ref}' is not in the bundle; add it{also}")


def validate_bundle(zip_path: Path, score_keys: Collection[str] | None = SCORE_KEYS) -> list[str]:
    """Check a bundle zip: its ``competition.yaml``, the files it names, empty pages, program commands.

    Returns the problems, one line each (empty = ready to upload). Raises ``BundleError``
    when the file is not a zip or has no readable ``competition.yaml`` at its root.
    """
    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{zip_path}: not a readable zip ({' '.join(str(exc).split())}); pass the bundle .zip") from None
    with archive:
        names = [info.filename for info in archive.infolist()]
        sizes = {info.filename.rstrip("/"): info.file_size for info in archive.infolist() if not info.is_dir()}
        if "competition.yaml" not in sizes:
            nested = next((n for n in names if n.endswith("/competition.yaml")), None)
            hint = f"; it is at '{nested}': zip the folder's contents, not the folder" if nested else ""
            raise BundleError(f"{zip_path}: no competition.yaml at the root of the zip{hint}")
        try:
            data = yaml.safe_load(archive.read("competition.yaml"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise BundleError(f"{zip_path}: competition.yaml is not valid YAML{at}; fix the syntax") from None
        problems = validate_competition_yaml(data, score_keys, names)
        if not isinstance(data, Mapping):
            return problems
        texts = [("terms", data.get("terms"))]
        texts += [(f"pages[{i}].file", page.get("file")) for i, page in enumerate(data.get("pages") or [])
                  if isinstance(page, Mapping)]
        for where, ref in texts:
            if isinstance(ref, str) and sizes.get(ref.strip("/")) == 0:
                problems.append(f"{where}: '{ref}' is empty; Codabench refuses empty pages")
        for i, task in enumerate(data.get("tasks") or []):
            if isinstance(task, Mapping):
                for key in ("scoring_program", "ingestion_program"):
                    problem = _program_problem(archive, sizes, task.get(key))
                    if problem:
                        problems.append(f"tasks[{i}].{key}: {problem}")
    return problems


def _program_problem(archive: zipfile.ZipFile, sizes: Mapping[str, int], ref: Any) -> str | None:
    """A program folder in the bundle must hold a metadata.yaml with a command."""
    if not isinstance(ref, str) or ref.strip("/") in sizes:  # absent, or a .zip: not inspected here
        return None
    folder = ref.strip("/")
    meta = next((f"{folder}/{name}" for name in ("metadata.yaml", "metadata") if f"{folder}/{name}" in sizes), None)
    if meta is None:
        if any(name.startswith(folder + "/") for name in sizes):
            return f"'{folder}/' has no metadata.yaml; add one with a 'command:'"
        return None
    try:
        metadata = yaml.safe_load(io.BytesIO(archive.read(meta)))
    except yaml.YAMLError:
        return f"'{meta}' is not valid YAML"
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("command"), str) or not metadata["command"].strip():
        return f"'{meta}' has no 'command:'; Codabench would not know how to run the program"
    return None


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
    "validate_bundle",
    "validate_competition_yaml",
    "write_bundle",
]
