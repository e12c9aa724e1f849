"""The Codabench ingestion program: run an uploaded code submission (and the baseline) on the LR inputs.

It measures exactly as ``ntire-bench run`` does, with LR only on the worker's disk, and writes
what the scoring program reads: the results stores, the SR images and a manifest
(docs/codabench.md has the layouts).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ntire_bench.util.version import __version__
from ntire_bench.codabench.spec import DEFAULT_BUNDLE_EDITION, VALID_DATASET
from ntire_bench.data.datasets import DatasetError, DatasetSpec, ImagePair, PreparedDataset
from ntire_bench.scoring.editions import Edition, EditionError, load_edition
from ntire_bench.uploads.evaluate import ReferenceDataError
from ntire_bench.data.images import ImageError
from ntire_bench.plugins.declaration import PluginEntry, PluginError
from ntire_bench.util.hashing import sha256_file
from ntire_bench.results.records import FAILED, NO_WEIGHTS, OK, SubmissionResult
from ntire_bench.results.store import atomic_write_json

if TYPE_CHECKING:
    from ntire_bench.runner.context import RunConfig

from ntire_bench.codabench.programs import (BASELINE_DIR, BASELINE_RESULTS_DIR, EXIT_OK, EXIT_REJECTED, EXIT_SETUP, INGESTION_MANIFEST, INGESTION_SCHEMA, JUNK_NAMES, RESULTS_DIR, SR_DIR, SUBMISSION_STEMS, ProgramOutcome, Rejected, SetupError, is_image, program_entries)


@dataclass(frozen=True)
class IngestionOptions:
    """How the ingestion program measures; the defaults are the edition's (runs) and the harness's."""

    device: str = "auto"
    timing: str = "adaptive"
    warmup: int | None = None
    repeats: int | None = None
    runs: int | None = None
    target: float | None = None
    threads: int | None = None
    timeout_s: float = 3600.0
    sandbox: str = "auto"
    seed: int | None = None
    progress: bool = False


def ingest_program(submission_dir: Path, input_dir: Path, output_dir: Path,
                   edition: Edition | str | None = DEFAULT_BUNDLE_EDITION, *, dataset: str = VALID_DATASET,
                   options: IngestionOptions = IngestionOptions(),
                   log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> ProgramOutcome:
    """Run the submitted code on the LR inputs as one plugin, in the harness's sandboxed worker.

    Writes ``results/<name>.json`` (runtime, FLOPs, params; no PSNR: the HR images are not
    here), the SR images ``sr/<name>/<dataset>/<image>x4.png`` and the manifest the scoring
    program reads. When ``input_dir/baseline/`` holds the baseline's plugin, it is timed in
    the same job. Never raises for a bad submission or bad setup: see the exit code.
    """
    from ntire_bench.runner.evaluation import run_benchmark

    output_dir = Path(output_dir)
    outcome = ProgramOutcome(EXIT_SETUP)
    # Written whatever happens (replacing any file of that name), so the scoring program never
    # trusts a manifest that the ingestion did not write this time.
    manifest: dict[str, Any] = {"schema": INGESTION_SCHEMA, "harness": __version__, "status": "setup_error",
                                "message": ""}
    try:
        chosen = load_edition(edition)
        datasets = lr_datasets(Path(input_dir), dataset, output_dir / RESULTS_DIR)
        code_root = _program_root(Path(submission_dir))
        entry = find_plugin(code_root, "submission", options.sandbox, Rejected)
        baseline_dir = Path(input_dir) / BASELINE_DIR
        base_entry = (find_plugin(baseline_dir, "baseline", options.sandbox, SetupError)
                      if baseline_dir.is_dir() else None)
        manifest.update({
            "edition": chosen.name, "submission": entry.name, "datasets": [d.spec.name for d in datasets],
            "results": f"{RESULTS_DIR}/{entry.name}.json", "sr": f"{SR_DIR}/{entry.name}", "baseline_results": None,
        })
        runs = [(entry, RESULTS_DIR, code_root)]
        if base_entry is not None:
            runs.append((base_entry, BASELINE_RESULTS_DIR, baseline_dir))
        records = []
        for plugin, results_dir, zoo in runs:  # the submission first: when it fails, the baseline need not run
            config = _run_config(options, chosen, output_dir / results_dir, zoo, output_dir / SR_DIR, log)
            for data in datasets:  # the runner writes SR images into existing folders
                (output_dir / SR_DIR / plugin.name / data.spec.name).mkdir(parents=True, exist_ok=True)
            records.append(run_benchmark([plugin], datasets, config)[0])
            outcome.result = records[0]
            if records[0].status == FAILED:
                raise Rejected(records[0].error or "the submission failed")
            if records[0].status == NO_WEIGHTS:
                raise Rejected(f"{records[0].error}; put the weights file in the submission next to the plugin")
        if base_entry is not None:
            base_record = records[1]
            if base_record.status not in (OK, NO_WEIGHTS):
                raise SetupError(f"the baseline in {baseline_dir} failed: {base_record.error}")
            manifest["baseline"] = base_record.submission
            manifest["baseline_results"] = f"{BASELINE_RESULTS_DIR}/{base_record.submission}.json"
        outcome.notes += [measurement_line(r) for r in records]
        outcome.exit_code = EXIT_OK
        manifest["status"] = "ok"
    except Rejected as exc:
        outcome.exit_code, outcome.message = EXIT_REJECTED, f"submission rejected: {exc}"
        manifest.update(status="rejected", message=str(exc))
    except (SetupError, EditionError, ReferenceDataError, ImageError, DatasetError) as exc:
        outcome.exit_code = EXIT_SETUP
        outcome.message = f"ingestion setup error (not the submission's fault; tell the organisers): {exc}"
        manifest.update(status="setup_error", message=str(exc))
    atomic_write_json(output_dir / INGESTION_MANIFEST, manifest)
    return outcome


def measurement_line(record: SubmissionResult) -> str:
    """One line of what the ingestion measured for ``record``: runtime per dataset, params, FLOPs."""
    parts = [f"{name} {data.runtime_ms.mean:.3f} ms/image ({data.num_images} images)"
             for name, data in record.datasets.items() if data.runtime_ms is not None]
    if record.complexity is not None:
        parts.append(f"params {record.complexity.params}, FLOPs {record.complexity.flops}")
    return f"{record.submission}: {record.status}; " + "; ".join(parts)


def _run_config(options: IngestionOptions, edition: Edition, out_dir: Path, zoo: Path, sr_dir: Path,
                log: Callable[[str], None]) -> RunConfig:
    from ntire_bench.runner.context import RunConfig

    return RunConfig(out_dir=out_dir, device=options.device, model_zoo=(zoo,), warmup=options.warmup,
                     repeats=options.repeats, runs=options.runs or edition.runs, threads=options.threads,
                     timing=options.timing, target=options.target, timeout_s=options.timeout_s,
                     sandbox=options.sandbox, force=True, seed=options.seed, save_sr=sr_dir, score_quality=False,
                     flop_convention=edition.flop_convention,
                     progress=options.progress, log=log)


def _program_root(folder: Path) -> Path:
    """The folder itself, or the one folder it holds (a zip of the folder rather than of its contents)."""
    if not folder.is_dir():
        raise Rejected(f"{folder}: no submitted code found")
    entries = [e for e in folder.iterdir() if e.name not in JUNK_NAMES and not e.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not (entries[0] / "__init__.py").is_file():
        return entries[0]
    return folder


def find_plugin(folder: Path, role: str, sandbox: str, error: type[Exception]) -> PluginEntry:
    """The one plugin in ``folder``: ``submission.py``/``.yaml`` when present, else the folder's only one."""
    from ntire_bench.runner.discovery import discover

    named = [folder / stem for stem in SUBMISSION_STEMS if (folder / stem).is_file()]
    try:
        entries = discover(named[:1] or [folder], include_entry_points=False, sandbox=sandbox)
    except PluginError as exc:
        raise error(str(exc)) from None
    if not entries:
        raise error(f"the {role} holds no plugin: put a submission.py declaring SUBMISSION (or a team declaration "
                    "submission.yaml) at its top level")
    if len(entries) > 1:
        listed = ", ".join(f"{e.name} ({Path(e.source).name})" for e in entries)
        raise error(f"the {role} declares {len(entries)} submissions ({listed}); keep one, or name it submission.py")
    entry = entries[0]
    if not entry.ok:
        raise error(f"the {role}'s plugin cannot be read: {entry.error}")
    return entry


def lr_datasets(input_dir: Path, dataset: str, hidden_dir: Path, scale: int = 4) -> list[PreparedDataset]:
    """The LR-only datasets of ``input_dir``: one folder per dataset, or the LR images directly (``dataset``).

    Images are named ``<name>x<scale>.png``. There is no HR: each pair's HR path points into
    ``hidden_dir`` (the results folder, which workers never reach) and is never read.
    """
    if not input_dir.is_dir():
        raise SetupError(f"{input_dir}: no input data; attach the LR zip to the task as input_data")
    entries = [e for e in program_entries(input_dir) if e.name != BASELINE_DIR]
    folders = [e for e in entries if e.is_dir()]
    if any(is_image(e) for e in entries):
        layout = [(dataset, input_dir)]
    elif len(folders) == 1 and not any(is_image(e) for e in folders[0].iterdir()):
        return lr_datasets(folders[0], dataset, hidden_dir, scale)
    else:
        layout = [(folder.name, folder) for folder in folders]
    if not layout:
        raise SetupError(f"{input_dir}: holds no LR images; put one folder per dataset with <name>x{scale}.png files")
    prepared = []
    for name, folder in layout:
        files = sorted(p for p in folder.iterdir() if is_image(p))
        if not files:
            raise SetupError(f"{folder}: holds no LR images for dataset {name}")
        pairs = []
        digest = hashlib.sha256()
        for path in files:
            stem = path.stem
            suffix = f"x{scale}"
            if not stem.lower().endswith(suffix) or len(stem) == len(suffix):
                raise SetupError(f"{path}: LR images must be named <name>x{scale}.png (NTIRE naming)")
            image = stem[: -len(suffix)]
            pairs.append(ImagePair(name=image, lr_path=path, hr_path=hidden_dir / ".no-hr" / name / f"{image}.png"))
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
        spec = DatasetSpec(name=name, hr_dir="", lr_dir=str(folder), scale=scale)
        prepared.append(PreparedDataset(spec, pairs, digest.hexdigest()))
    return prepared


