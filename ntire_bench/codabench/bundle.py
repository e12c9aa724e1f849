"""Codabench competition bundle: generate one for an NTIRE-style ESR challenge.

The bundle follows Codabench's v2 ``competition.yaml`` format. A development phase takes
uploads of SR images for the validation LR set and scores their PSNR; a final phase takes
code, which an ingestion program runs, and ranks by ``Score_Final``. Both programs are thin
``metadata.yaml`` files that run this harness inside the competition's docker image, which
must hold it: ``worker_image/`` is the build context of such an image (image.py), and no
program installs anything at run time.

What Codabench enforces is checked by validate.py (its rules cite Codabench's code); the
generated ``competition.yaml`` passes it before anything is written. Phase times are written
as quoted ``'YYYY-MM-DD HH:MM:SS'`` strings, the one form Codabench reads with its time of day.

The harness never bundles ground truth: the organiser adds the HR reference zips (and the
LR input zips of code phases) named by :func:`organiser_data_files`. An edition given as a
YAML file is copied into each program folder as ``edition.yaml`` (the programs run there).
The programs are programs.py and ingest.py, the pages pages.py; docs/codabench.md is the
organiser's guide.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ntire_bench.scoring.editions import Edition, EditionError, load_edition
from ntire_bench.codabench.pages import pages_text, readme_text
from ntire_bench.codabench.image import build_harness_wheel, worker_image_files
from ntire_bench.codabench.validate import validate_competition_yaml
from ntire_bench.codabench.validate_common import is_uuid
from ntire_bench.codabench.spec import BundleError, BundleSpec, CODE_PHASE, COLUMN_KEYS, DEFAULT_BUNDLE_EDITION, EDITION_FILE, INGESTION_PROGRAM_DIR, LEADERBOARD_KEY, PHASE_KINDS, PhaseSpec, RESULTS_PHASE, RESULTS_SCORING_PROGRAM_DIR, SCORING_PROGRAM_DIR, TIME_FORMAT, WORKER_IMAGE_DIR, input_path, reference_path

_PAGES = (("overview", "Overview"), ("evaluation", "Evaluation"), ("submission", "Submission"), ("terms", "Terms"))


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
    if spec.queue is not None and not is_uuid(spec.queue):
        raise BundleError(f"BundleSpec.queue: {spec.queue!r} is not a UUID; give the vhost of your Codabench queue "
                          "(a UUID, shown on the queue's page), which Codabench looks the queue up by")
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
            # A quoted string keeps its time of day; an unquoted YAML timestamp would load as a
            # datetime, of which Codabench keeps only the day (validate_phases.codabench_time).
            "start": phase.start.strftime(TIME_FORMAT),
            "end": phase.end.strftime(TIME_FORMAT) if phase.end else None,
            "max_submissions_per_day": phase.max_submissions_per_day,
            "max_submissions": phase.max_submissions,
            "execution_time_limit": phase.execution_time_limit_s,
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


def write_bundle(spec: BundleSpec, out_zip: Path, *, wheel: Path | None = None) -> Path:
    """Write the competition bundle zip for ``spec``; return its path.

    ``wheel`` is the harness wheel ``worker_image/`` installs; by default it is built from this
    checkout. The generated ``competition.yaml`` is validated (with ``COLUMN_KEYS`` as the
    scoring program's keys) before anything is written; ``BundleError`` lists what is wrong.
    The zip is reproducible for a given wheel: fixed timestamps, sorted members.
    """
    edition = _check_spec(spec)
    needs_ingestion = any(phase.kind == CODE_PHASE for phase in spec.phases)
    data = competition_yaml(spec)
    files: dict[str, bytes] = {
        "competition.yaml": yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100).encode(),
        "logo.png": make_logo(),
        "README.md": readme_text(spec).encode(),
    }
    for folder, command in _scoring_programs(spec).items():
        files[f"{folder}/metadata.yaml"] = _metadata_yaml(command, spec)
    if needs_ingestion:
        ingestion = spec.ingestion_command
        if spec.edition != DEFAULT_BUNDLE_EDITION and "{edition}" not in ingestion:
            ingestion += " --edition {edition}"  # its timing passes (runs) follow the edition
        files[f"{INGESTION_PROGRAM_DIR}/metadata.yaml"] = _metadata_yaml(ingestion, spec)
    if edition_is_file(spec.edition):
        edition_text = Path(spec.edition).read_bytes()
        for program in [*_scoring_programs(spec), *([INGESTION_PROGRAM_DIR] if needs_ingestion else [])]:
            files[f"{program}/{EDITION_FILE}"] = edition_text
    for name, text in pages_text(spec, edition).items():
        files[f"pages/{name}.md"] = text.encode()
    with tempfile.TemporaryDirectory(prefix="ntire-bench-bundle-") as scratch:
        for name, content in worker_image_files(spec, wheel or build_harness_wheel(Path(scratch))).items():
            files[f"{WORKER_IMAGE_DIR}/{name}"] = content

    written_back = yaml.safe_load(files["competition.yaml"])
    problems = validate_competition_yaml(written_back, COLUMN_KEYS, set(files) | set(organiser_data_files(spec)))
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
    """A program's ``metadata.yaml``: the command alone, run from the image (nothing is installed first)."""
    resolved = command.replace("{edition}", shlex.quote(edition_argument(spec)))
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


