"""The Codabench scoring program (and what the ingestion program shares with it), run by the compute worker.

Container layout (Codabench compute worker; working directory ``/app/program``, the program's
own folder):

- scoring: ``/app/input/ref`` (reference data: HR images), ``/app/input/res`` (the upload, or
  the ingestion program's output), ``/app/output`` (``scores.json``, ``detailed_results.html``);
- ingestion: ``/app/ingested_program`` (the participant's code), ``/app/input_data`` (LR
  inputs), ``/app/output`` (becomes the scoring program's ``input/res``).

Exit conventions. A submission is *Failed* when the scoring program exits non-zero (compute
workers since 2025-10, compute_worker.py ``start``) or writes no ``scores.json`` (every worker);
either way no scores and no scoring output are uploaded, while its stderr (the scoring log) and
``detailed_results.html`` are. So a submission that cannot be scored writes no scores file, one
line on stderr, the full list of reasons in ``detailed_results.html`` and exits 1; an
organiser-side problem (reference data, baseline, settings) does the same with exit 2. A
scored submission exits 0 and writes a value for every leaderboard column: Codabench stores
each as a decimal (at most 10 integer digits) and cannot store null. A column a submission has
no value for gets ``NOT_RANKED`` (asc columns) or ``0`` (PSNR), so it sorts last; that is also
how a code submission under the PSNR threshold is listed (its computed scores are in the
detailed results).

``Score_Final`` (code phases) is computed here with ``scoring.score_results`` under the edition,
against the baseline's results: measured in the same job when ``input_data/baseline/`` holds
the baseline's plugin (the ingestion program times it next to the submission), else read from
``input/ref/baseline.json`` (a results file the organiser measured with the same image,
harness version, settings and GPU model). The ingestion program is ingest.py;
docs/codabench.md has the layouts.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntire_bench.util.version import __version__
from ntire_bench.codabench.worker_metadata import WorkerMetadataError, submission_exit_code
from ntire_bench.codabench.spec import COLUMNS, COLUMN_KEYS, DEFAULT_BUNDLE_EDITION, NOT_RANKED_VALUE, NO_PSNR_VALUE, PSNR_COLUMNS, VALID_DATASET
from ntire_bench.data.datasets import IMAGE_SUFFIXES
from ntire_bench.scoring.editions import Edition, EditionError, load_edition
from ntire_bench.uploads.evaluate import EvaluationResult, ReferenceDataError, ReferenceSet, evaluate_uploads
from ntire_bench.results.records import FAILED, NO_WEIGHTS, OK, RUNNING, SubmissionResult
from ntire_bench.scoring.leaderboard import ScoringError, score_results
from ntire_bench.results.store import ResultsError, atomic_write_json, read_result
from ntire_bench.uploads.intake import CODABENCH_METADATA_FILE, UploadProblem
from ntire_bench.util.text import one_line

SCORES_FILE = "scores.json"
DETAILED_FILE = "detailed_results.html"
RESULTS_FILE = "ntire_bench_results.json"  # the merged results record, next to scores.json
INGESTION_MANIFEST = "ntire_bench_ingestion.json"
INGESTION_SCHEMA = "ntire-bench/codabench-ingestion/v1"
RESULTS_DIR = "results"  # ingestion output: the submission's results store
BASELINE_RESULTS_DIR = "baseline_results"  # ingestion output: the baseline's, when timed in the same job
SR_DIR = "sr"  # ingestion output: sr/<submission>/<dataset>/<name>x4.png
BASELINE_FILE = "baseline.json"  # in input/ref: the baseline's results, when not timed in the same job
BASELINE_DIR = "baseline"  # in input_data: the baseline's plugin and weights, to time it in the same job
SUBMISSION_STEMS = ("submission.py", "submission.yaml", "submission.yml")
NOT_RANKED = NOT_RANKED_VALUE  # asc columns without a value; real scores are capped here (Codabench stores < 1e10)
NO_PSNR = NO_PSNR_VALUE  # PSNR columns without a value
EXIT_OK, EXIT_REJECTED, EXIT_SETUP = 0, 1, 2
PHASES = ("auto", "results", "code")
JUNK_NAMES = {".DS_Store", "__MACOSX", CODABENCH_METADATA_FILE}


class SetupError(ValueError):
    """The competition's side is unusable (reference or input data, baseline, options); one line."""


class Rejected(ValueError):
    """The submission cannot be scored; the one-line reason is shown to the participant."""


@dataclass
class ProgramOutcome:
    """What a program did: its exit status, the one line for stderr, and what it produced."""

    exit_code: int
    message: str = ""
    scores: dict[str, float] | None = None
    result: SubmissionResult | None = None
    problems: list[UploadProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ scoring program


def score_program(input_dir: Path, output_dir: Path, edition: Edition | str | None = DEFAULT_BUNDLE_EDITION, *,
                  dataset: str = VALID_DATASET, baseline: str | None = None,
                  thresholds: Mapping[str, float] | None = None, phase: str = "auto", workdir: Path | None = None,
                  workers: int | None = None) -> ProgramOutcome:
    """Score ``input_dir/res`` against ``input_dir/ref``; write ``scores.json`` and ``detailed_results.html``.

    An upload of SR images (results phase) is scored for PSNR; an ingestion output (code phase)
    also gets Score_Final and the runtime, FLOPs and params scores under ``edition``. ``phase``
    ``auto`` tells them apart by the ingestion manifest in ``res``; ``results`` or ``code``
    fixes it (a results phase then never reads a manifest an upload might carry). ``dataset``
    names a flat reference folder; ``baseline`` overrides the edition's baseline name.
    Never raises for a bad submission or bad setup: see ``ProgramOutcome.exit_code``.
    """
    if phase not in PHASES:
        raise ValueError(f"score_program: phase must be one of {', '.join(PHASES)}, got {phase!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in (SCORES_FILE, DETAILED_FILE, RESULTS_FILE):
        (output_dir / stale).unlink(missing_ok=True)
    outcome = ProgramOutcome(EXIT_SETUP)
    title = "Submission"
    try:
        chosen = load_edition(edition)
        input_dir = Path(input_dir)
        ref, res = input_dir / "ref", input_dir / "res"
        if not ref.is_dir():
            raise SetupError(f"{ref}: no reference data; attach the HR zip to the task as reference_data")
        if not res.is_dir():
            raise Rejected(f"{res}: nothing was submitted (no prediction output)")
        references = reference_sets(ref, dataset, chosen)
        with tempfile.TemporaryDirectory(prefix="ntire-bench-score-", dir=workdir) as scratch:
            if phase == "code" or (phase == "auto" and (res / INGESTION_MANIFEST).is_file()):
                title = "Code submission"
                _score_code(res, ref, references, chosen, baseline, thresholds, Path(scratch), workers, outcome)
            else:
                title = "Uploaded SR images"
                _score_upload(res, references, Path(scratch), workers, outcome)
    except Rejected as exc:
        outcome.exit_code, outcome.message = EXIT_REJECTED, f"submission rejected: {exc}"
    except (SetupError, ReferenceDataError, EditionError, ScoringError, ResultsError) as exc:
        outcome.exit_code = EXIT_SETUP
        outcome.message = f"scoring setup error (not the submission's fault; tell the organisers): {exc}"
    if outcome.exit_code == EXIT_OK and outcome.scores is not None:
        atomic_write_json(output_dir / SCORES_FILE, outcome.scores)
    if outcome.result is not None:
        atomic_write_json(output_dir / RESULTS_FILE, outcome.result.to_json())
    (output_dir / DETAILED_FILE).write_text(detailed_html(title, outcome), encoding="utf-8")
    return outcome


def reference_sets(ref: Path, dataset: str, edition: Edition, scale: int = 4) -> list[ReferenceSet]:
    """The HR sets in ``ref``: one folder per dataset (named as it), or the images directly (``dataset``).

    A single wrapping folder (a zip of the folder rather than of its contents) is entered.
    Every set must have a leaderboard column (``PSNR_COLUMNS``); raises SetupError otherwise.
    """
    entries = program_entries(ref)
    folders = [e for e in entries if e.is_dir()]
    known = set(PSNR_COLUMNS.values())
    if (not any(is_image(e) for e in entries) and len(folders) == 1 and folders[0].name not in known
            and not any(is_image(e) for e in folders[0].iterdir())):
        return reference_sets(folders[0], dataset, edition, scale)
    if any(is_image(e) for e in entries):
        layout = [(dataset, ref)]
    else:
        layout = [(folder.name, folder) for folder in sorted(folders)]
    if not layout:
        raise SetupError(f"{ref}: holds no HR images; put one folder per dataset ({', '.join(sorted(known))}) "
                         "with the HR PNGs in the reference zip")
    columns = ", ".join(f"{key} <- {name}" for key, name in PSNR_COLUMNS.items())
    sets = []
    for name, folder in layout:
        if name not in known:
            raise SetupError(f"{folder}: dataset {name!r} has no leaderboard column ({columns}); "
                             "name the reference folder after one of those datasets")
        sets.append(ReferenceSet.from_folder(name, folder, scale, edition.thresholds.get(name)))
    return sets


def program_entries(folder: Path) -> list[Path]:
    return [e for e in sorted(folder.iterdir())
            if e.name not in JUNK_NAMES and not e.name.startswith("._") and e.name != BASELINE_FILE]


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _score_upload(res: Path, references: list[ReferenceSet], scratch: Path, workers: int | None,
                  outcome: ProgramOutcome) -> None:
    """Results phase: the upload's PSNR per dataset; every other column is NOT_RANKED."""
    evaluation = evaluate_uploads(res, references, scratch, submission="upload", workers=workers)
    outcome.result, outcome.problems = evaluation.result, evaluation.problems
    if not evaluation.ok:
        raise Rejected(evaluation.result.error or "the upload could not be scored")
    outcome.scores = leaderboard_scores(evaluation.result, row=None)
    outcome.exit_code = EXIT_OK


def _score_code(res: Path, ref: Path, references: list[ReferenceSet], edition: Edition, baseline_name: str | None,
                thresholds: Mapping[str, float] | None, scratch: Path, workers: int | None,
                outcome: ProgramOutcome) -> None:
    """Code phase: PSNR from the SR images the ingestion wrote, then Score_Final against the baseline."""
    try:
        own_command = submission_exit_code(res)
    except WorkerMetadataError as exc:
        raise SetupError(str(exc)) from None
    if own_command is not None:  # it ran beside the ingestion, with the GPU and the output folder (worker_metadata.py)
        raise Rejected(f"your submission's metadata has a command, which the worker ran beside the ingestion (exit "
                       f"code {own_command}); remove the command: the organisers' ingestion program runs your code")
    manifest = read_manifest(res)
    record = read_result(res / manifest["results"])
    outcome.result = record
    if record.status == FAILED:
        raise Rejected(f"your code failed: {record.error or 'no reason recorded'}")
    if record.status == NO_WEIGHTS:
        raise Rejected(f"{record.error or 'checkpoint not found'}; put the weights file in the submission next to "
                       "the plugin")
    if record.status == RUNNING:
        raise Rejected("the ingestion did not finish (time limit or crash); see the ingestion log")
    sr_root = res / manifest["sr"]
    for reference in references:
        folder = sr_root / reference.name
        if not folder.is_dir() or reference.name not in record.datasets:
            raise SetupError(f"the ingestion ran no {reference.name} (the input data lacks it?); the input data and "
                             "the reference data must hold the same datasets")
        evaluation = evaluate_uploads(folder, reference, scratch, submission=record.submission, workers=workers)
        if not evaluation.ok:
            outcome.problems += evaluation.problems
            raise SetupError(f"the SR images of {reference.name} written by the ingestion do not match the reference "
                             f"data: {evaluation.result.error}")
        merge_quality(record, reference.name, evaluation)
    record.reference = False  # a participant's own flag does not take them off the leaderboard
    base = load_baseline(res, ref, manifest, baseline_name or edition.baseline)
    if base.submission == record.submission:
        base = dataclasses.replace(base, submission=f"{base.submission}-baseline")
    board = score_results([record, base], edition=edition, baseline=base.submission, thresholds=thresholds,
                          source=str(res))
    row = board.table[board.table["submission"] == record.submission].iloc[0].to_dict()
    outcome.scores = leaderboard_scores(record, row)
    if not row["eligible"]:
        outcome.notes.append(f"not ranked: {row['reason']}; Score_Final as computed: {_fmt(row['score'])} "
                             f"(listed as {NOT_RANKED:g})")
    figures = {k: board.baseline_metrics.get(k) for k in ("runtime_ms", "params_m", "flops_g")}
    outcome.notes.append(f"baseline {board.baseline}: {board.runtime_rule}; "
                         f"{', '.join(f'{k} {_fmt(v)}' for k, v in figures.items())}")
    outcome.exit_code = EXIT_OK


def read_manifest(res: Path) -> dict[str, Any]:
    """The ingestion program's manifest in ``res``; Rejected or SetupError when the ingestion did not succeed."""
    path = res / INGESTION_MANIFEST
    if not path.is_file():
        raise Rejected(f"no ingestion output in {res} (the ingestion program did not run or was stopped); "
                       "see the ingestion log")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SetupError(f"{path}: unreadable ingestion manifest ({one_line(exc, with_type=False)})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != INGESTION_SCHEMA:
        raise SetupError(f"{path}: not an ntire-bench ingestion manifest (schema {INGESTION_SCHEMA})")
    status, message = manifest.get("status"), str(manifest.get("message") or "no reason recorded")
    if status == "rejected":
        raise Rejected(message)
    if status != "ok":
        raise SetupError(f"the ingestion failed: {message}")
    for key in ("results", "sr"):
        value = manifest.get(key)
        if not isinstance(value, str) or ".." in Path(value).parts or Path(value).is_absolute():
            raise SetupError(f"{path}: field {key!r} must be a relative path inside the output, got {value!r}")
    return manifest


def merge_quality(record: SubmissionResult, dataset: str, evaluation: EvaluationResult) -> None:
    """Copy the measured PSNR/SSIM (means and per image) of ``dataset`` into the ingestion's record."""
    measured = evaluation.result.datasets[dataset]
    target = record.datasets[dataset]
    for key in ("psnr", "psnr_y", "ssim", "ssim_y"):
        setattr(target, key, getattr(measured, key))
    by_name = {row.name: row for row in measured.images}
    for row in target.images:
        source = by_name.get(row.name)
        if source is not None:
            row.psnr, row.psnr_y, row.ssim, row.ssim_y = source.psnr, source.psnr_y, source.ssim, source.ssim_y


def load_baseline(res: Path, ref: Path, manifest: Mapping[str, Any], expected: str) -> SubmissionResult:
    """The baseline's results: timed in the same job (ingestion output) or shipped as ``ref/baseline.json``."""
    timed = manifest.get("baseline_results")
    if isinstance(timed, str) and timed:
        if ".." in Path(timed).parts or Path(timed).is_absolute():
            raise SetupError(f"ingestion manifest: baseline_results must be a relative path inside the output, "
                             f"got {timed!r}")
        path = res / timed
        where = "timed in the same job"
    else:
        path = ref / BASELINE_FILE
        where = "in the reference data"
        if not path.is_file():
            raise SetupError(f"no baseline figures: add the baseline's results as {BASELINE_FILE} to the reference "
                             f"data, or its plugin and weights as {BASELINE_DIR}/ to the input data")
    base = read_result(path)
    if base.submission != expected:
        raise SetupError(f"the baseline {where} ({path.name}) is '{base.submission}', but the edition's baseline is "
                         f"'{expected}'; ship {expected}'s results or pass --baseline {base.submission}")
    if base.status not in (OK, NO_WEIGHTS):
        raise SetupError(f"the baseline {where} ({path.name}) has status {base.status}: {base.error}")
    return base


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def leaderboard_scores(record: SubmissionResult, row: Mapping[str, Any] | None) -> dict[str, float]:
    """``scores.json``: a finite value for every leaderboard column (see the module docstring).

    ``row`` is the submission's leaderboard row (code phases); without it only PSNR is known.
    """
    scores: dict[str, float] = {}
    for key, dataset in PSNR_COLUMNS.items():
        result = record.datasets.get(dataset)
        psnr = _finite(result.psnr) if result is not None else None
        scores[key] = psnr if psnr is not None else NO_PSNR
    row = row or {}
    eligible = bool(row.get("eligible"))
    values = {
        "score_final": row.get("score") if eligible else None,
        "score_runtime": row.get("score_runtime"),
        "score_flops": row.get("score_flops"),
        "score_params": row.get("score_params"),
        "runtime_ms": row.get("runtime_ms"),
        "params_m": row.get("params_m"),
        "flops_g": row.get("flops_g"),
    }
    for key, value in values.items():
        number = _finite(value)
        scores[key] = NOT_RANKED if number is None else min(number, NOT_RANKED)
    return {key: scores[key] for key in COLUMN_KEYS}


# ------------------------------------------------------------------------------ detailed results


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}f}"
    return str(value)


def detailed_html(title: str, outcome: ProgramOutcome) -> str:
    """``detailed_results.html``: status, scores, every problem, and the per-image table; self-contained."""
    esc = html.escape
    status = {EXIT_OK: "scored", EXIT_REJECTED: "rejected", EXIT_SETUP: "not scored (setup error)"}[outcome.exit_code]
    parts = [f"<h1>{esc(title)}: {esc(status)}</h1>"]
    if outcome.message:
        parts.append(f"<p class='bad'>{esc(outcome.message)}</p>")
    for note in outcome.notes:
        parts.append(f"<p>{esc(note)}</p>")
    if outcome.scores is not None:
        titles = {c.key: c.title for c in COLUMNS}
        rows = "".join(f"<tr><td>{esc(titles.get(k, k))}</td><td><code>{esc(k)}</code></td>"
                       f"<td class='num'>{esc(_fmt(v))}</td></tr>" for k, v in outcome.scores.items())
        parts.append(f"<h2>Scores</h2><table><tr><th>column</th><th>key</th><th>value</th></tr>{rows}</table>")
    if outcome.problems:
        items = "".join(f"<li>{esc(p.reason)}</li>" for p in outcome.problems)
        parts.append(f"<h2>Problems ({len(outcome.problems)})</h2><ul>{items}</ul>")
    record = outcome.result
    if record is not None:
        for name, data in record.datasets.items():
            head = (f"<h2>{esc(name)}: {data.num_images} images, PSNR {esc(_fmt(data.psnr))} dB, "
                    f"SSIM {esc(_fmt(data.ssim))}</h2>")
            timed = any(row.runtime_ms is not None for row in data.images)
            cells = "".join(
                f"<tr><td>{esc(row.name)}</td>"
                + "".join(f"<td class='num'>{esc(_fmt(getattr(row, k)))}</td>" for k in ("psnr", "psnr_y", "ssim", "ssim_y"))
                + (f"<td class='num'>{esc(_fmt(row.runtime_ms.median if row.runtime_ms else None, 3))}</td>" if timed else "")
                + "</tr>" for row in data.images)
            runtime_head = "<th>runtime ms (median)</th>" if timed else ""
            parts.append(f"{head}<table><tr><th>image</th><th>PSNR</th><th>PSNR-Y</th><th>SSIM</th><th>SSIM-Y</th>"
                         f"{runtime_head}</tr>{cells}</table>")
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#111}table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:.2em .6em}th{background:#f3f4f6}.num{text-align:right;"
             "font-variant-numeric:tabular-nums}.bad{color:#b91c1c;font-weight:600}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}<p><small>ntire-bench {esc(__version__)}</small></p></body></html>\n")


