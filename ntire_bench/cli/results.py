"""Command-line commands over stored results and uploads: score, gate, evaluate, codabench.

main.py adds ``COMMANDS`` to the ``ntire-bench`` group beside the measuring commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ntire_bench.cli.common import DataError, named_datasets
from ntire_bench.codabench.spec import DEFAULT_BUNDLE_EDITION, DEFAULT_DOCKER_IMAGE, DEFAULT_QUEUE_TIME_LIMIT_S, VALID_DATASET, WORKER_BASE_IMAGE


def _threshold_overrides(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    from ntire_bench.scoring.editions import parse_threshold

    overrides = {}
    for text in values:
        try:
            dataset, db = parse_threshold(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        overrides[dataset] = db
    return overrides


def _edition_options(fn):
    """Options shared by `score` and `gate`: the edition and threshold overrides."""
    fn = click.option("--threshold", "thresholds", multiple=True, metavar="DATASET=DB", callback=_threshold_overrides,
                      help="PSNR threshold (RGB, dB) that adds to or replaces the edition's (repeatable).")(fn)
    return click.option("--edition", default=None, metavar="NAME|FILE.yaml",
                        help="Preset (default, ntire2024, ntire2025, ntire2026) or an edition YAML file "
                             "[default: default].")(fn)


@click.command("score")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Results directory written by `ntire-bench run` [default: results/].")
@click.option("--metrics", "metrics_csv", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Score a CSV of published figures instead: submission,psnr_valid,psnr_test,runtime_ms,"
                   "params_m,flops_g.")
@click.option("--baseline", default=None, help="Submission that normalises the scores [default: the edition's].")
@_edition_options
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboard"),
              show_default=True, help="Where leaderboard.{csv,md,json,html,png} are written.")
def score_command(results_dir, metrics_csv, baseline, edition, thresholds, out_dir):
    """Rank stored results (never re-measures) and write the leaderboard.

    Score = w_rt*exp(2*runtime/runtime_b) + w_flops*exp(2*FLOPs/FLOPs_b) + w_params*exp(2*params/params_b),
    lower is better; the baseline scores 7.389. Exits 2 on usage or data errors
    (missing or failed baseline, mixed devices or settings, bad CSV). See docs/scoring.md.
    """
    from ntire_bench import report
    from ntire_bench.scoring.editions import EditionError
    from ntire_bench.results.published import PublishedTableError, load_metrics_csv
    from ntire_bench.scoring.leaderboard import ScoringError, score_results
    from ntire_bench.results.store import ResultsError, ResultsStore

    if results_dir is not None and metrics_csv is not None:
        raise click.UsageError("pass either --results DIR or --metrics FILE.csv, not both")
    try:
        if metrics_csv is not None:
            results, source = load_metrics_csv(metrics_csv), str(metrics_csv)
        else:
            source = str(results_dir or Path("results"))
            loaded = ResultsStore(source).load_all()
            for problem in loaded.problems:
                click.echo(f"warning: {problem.line()} (left in place; not ranked)", err=True)
            results = loaded.results
        board = score_results(results, edition=edition, baseline=baseline, thresholds=thresholds, source=source)
    except (ScoringError, ResultsError, EditionError, PublishedTableError) as exc:
        raise DataError(str(exc)) from None
    if metrics_csv is not None and not board.thresholds:
        click.echo(f"note: edition '{board.edition.name}' sets no PSNR thresholds for a metrics table; "
                   "pass --edition ntire2024 or --threshold DATASET=DB to check them", err=True)
    paths = report.write_leaderboard(board, out_dir)
    click.echo(report.format_table(board))
    click.echo(f"leaderboard written to {', '.join(str(p) for p in paths.values())}", err=True)


@click.command("gate")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results directory written by `ntire-bench run`.")
@_edition_options
def gate_command(results_dir, edition, thresholds):
    """Check PSNR thresholds for CI: exit 0 when every evaluated submission meets them.

    Exit 1 when any submission falls short or failed to run (one line per failure), 2 on
    usage or data errors (missing or empty results directory, unreadable file, or no
    threshold at all: a gate that checks nothing never passes).
    """
    from ntire_bench.scoring.editions import EditionError
    from ntire_bench.scoring.gate import GateError, check_gate
    from ntire_bench.results.store import ResultsError, ResultsStore

    try:
        results = ResultsStore(results_dir).load_all(strict=True).results
        verdict = check_gate(results, edition=edition, thresholds=thresholds)
    except (GateError, ResultsError, EditionError) as exc:
        raise DataError(str(exc)) from None
    for name, reason in verdict.skipped:
        click.echo(f"skip {name}: {reason}", err=True)
    limits = ", ".join(f"{d} >= {v:g} dB" for d, v in verdict.thresholds.items())
    if not verdict.passed:
        for failure in verdict.failures:
            click.echo(failure.line())
        click.echo(f"gate failed: {len(verdict.failures)} problem(s) ({limits or 'no thresholds'})", err=True)
        sys.exit(1)
    click.echo(f"gate passed: {', '.join(verdict.checked)} meet {limits}")


# ------------------------------------------------------------------ uploads of SR images, and Codabench


def _results_name(path: Path) -> str:
    """A results-file name from an upload's file or folder name."""
    import re

    stem = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "upload"


@click.command("evaluate")
@click.argument("upload", type=click.Path(exists=True, path_type=Path))
@click.option("--dataset", "dataset_names", multiple=True,
              help="Dataset whose HR images the upload is scored against (repeatable: the upload then holds one "
                   "folder per dataset, named as it).")
@click.option("--datasets-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Dataset registry [default: ./datasets.yaml when present].")
@click.option("--hr", "hr_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Score against the HR images in this folder instead of a named dataset.")
@click.option("--scale", type=click.IntRange(min=1), default=4, show_default=True, help="Scale, with --hr.")
@click.option("--name", default=None, help="Name of the results file [default: from the upload's name].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Where the results JSON file goes.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Threads that decode and measure images [default: CPUs + 1, at most 4].")
def evaluate_command(upload, dataset_names, datasets_file, hr_dir, scale, name, out_dir, workers):
    """Score uploaded SR images (a folder or .zip) against HR images, with no model: PSNR/SSIM as `run` computes them.

    Images pair with HR by NTIRE name: 0801x4.png or 0801.png with HR 0801.png. Writes a results
    file (status ok or failed, no runtime). Exit 0 when every image is scored, 1 when the upload
    has problems (listed one per line), 2 on usage or data errors.
    """
    import tempfile

    from ntire_bench.data.datasets import DatasetError
    from ntire_bench.uploads.evaluate import ReferenceDataError, ReferenceSet, evaluate_uploads
    from ntire_bench.results.store import ResultsStore

    if hr_dir is not None and dataset_names:
        raise click.UsageError("pass --dataset NAME or --hr DIR, not both")
    if hr_dir is None and not dataset_names:
        raise click.UsageError("pass --dataset NAME (from the datasets file) or --hr DIR")
    name = name or _results_name(upload)
    try:
        if hr_dir is not None:
            references = [ReferenceSet.from_folder(hr_dir.name, hr_dir, scale)]
        else:
            specs, _ = named_datasets(datasets_file, dataset_names)
            references = [ReferenceSet.from_spec(specs[n]) for n in dataset_names]
        with tempfile.TemporaryDirectory(prefix="ntire-bench-evaluate-") as workdir:
            evaluation = evaluate_uploads(upload, references, Path(workdir), submission=name, workers=workers)
    except (DatasetError, ReferenceDataError, ValueError) as exc:
        raise DataError(str(exc)) from exc
    path = ResultsStore(out_dir).save(evaluation.result)
    for dataset, result in evaluation.result.datasets.items():
        if result.psnr is not None:
            click.echo(f"{dataset}: PSNR {result.psnr:.4f} dB, PSNR-Y {result.psnr_y:.4f} dB, SSIM {result.ssim:.4f}, "
                       f"SSIM-Y {result.ssim_y:.4f} ({result.num_images} images)")
    for problem in evaluation.problems:
        click.echo(problem.reason)
    click.echo(f"results written to {path}", err=True)
    if not evaluation.ok:
        click.echo(f"upload not scored: {evaluation.result.error}", err=True)
        sys.exit(1)


@click.group("codabench")
def codabench_group() -> None:
    """Codabench: the scoring and ingestion programs, and the competition bundle (docs/codabench.md)."""


def _report_outcome(outcome) -> None:
    for note in outcome.notes:
        click.echo(note)
    if outcome.scores is not None and outcome.exit_code == 0:
        click.echo(" ".join(f"{k}={v:.6g}" for k, v in outcome.scores.items()))
    if outcome.message:
        click.echo(outcome.message, err=True)
    sys.exit(outcome.exit_code)


@codabench_group.command("score")
@click.option("--input", "input_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The worker's input folder: ref/ (HR) and res/ (the upload or the ingestion's output).")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where scores.json and detailed_results.html go.")
@click.option("--edition", default=DEFAULT_BUNDLE_EDITION, show_default=True, metavar="NAME|FILE.yaml",
              help="Scoring edition: weights, thresholds and baseline of Score_Final.")
@click.option("--dataset", default=VALID_DATASET, show_default=True,
              help="Dataset of a reference folder that holds the HR images directly (no dataset folders).")
@click.option("--baseline", default=None, help="Name of the baseline [default: the edition's].")
@click.option("--threshold", "thresholds", multiple=True, metavar="DATASET=DB", callback=_threshold_overrides,
              help="PSNR threshold (RGB, dB) that adds to or replaces the edition's (repeatable).")
@click.option("--phase", type=click.Choice(["auto", "results", "code"]), default="auto", show_default=True,
              help="results: res/ is an upload of SR images; code: the ingestion's output; auto: by its manifest.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Threads that decode and measure images.")
def codabench_score_command(input_dir, output_dir, edition, dataset, baseline, thresholds, phase, workers):
    """The scoring program: writes scores.json (the leaderboard columns) and detailed_results.html.

    Exit 0: scored. Exit 1: the submission cannot be scored (no scores.json, so Codabench marks it
    Failed; the reason is on stderr). Exit 2: the competition's setup is at fault.
    """
    from ntire_bench.codabench.programs import score_program

    _report_outcome(score_program(input_dir, output_dir, edition, dataset=dataset, baseline=baseline,
                                  thresholds=thresholds, phase=phase, workers=workers))


@codabench_group.command("ingest")
@click.option("--submission", "submission_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The submitted code: submission.py (or a team declaration submission.yaml) and its weights.")
@click.option("--input", "input_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The LR inputs: one folder per dataset (or the images directly), optionally baseline/.")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the results, the SR images and the manifest for the scoring program go.")
@click.option("--edition", default=DEFAULT_BUNDLE_EDITION, show_default=True, metavar="NAME|FILE.yaml",
              help="Edition whose timing passes (runs) are the default.")
@click.option("--dataset", default=VALID_DATASET, show_default=True,
              help="Dataset of an input folder that holds the LR images directly.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--timing", type=click.Choice(["adaptive", "fixed"]), default="adaptive", show_default=True,
              help="Per-image timing rule (docs/runtime.md).")
@click.option("--warmup", type=click.IntRange(min=0), default=None, help="Untimed passes per image (adaptive: cap).")
@click.option("--repeats", type=click.IntRange(min=1), default=None, help="Timed passes per image (adaptive: cap).")
@click.option("--runs", type=click.IntRange(min=1), default=None, help="Timing passes [default: the edition's].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Host threads for the submission.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=3600, show_default=True,
              help="Wall-clock limit per worker, in seconds.")
@click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "landlock", "none"]), default="auto",
              show_default=True, help="How the submission's processes are confined (docs/isolation.md).")
@click.option("--seed", type=int, default=None, help="Seed of the timing noise and probes [default: fresh].")
def codabench_ingest_command(submission_dir, input_dir, output_dir, edition, dataset, device, timing, warmup, repeats,
                             runs, threads, timeout_s, sandbox, seed):
    """The ingestion program: runs the submitted code as one plugin on the LR inputs, in the sandboxed worker.

    Exit 0: measured. Exit 1: the submission could not be run (the reason is on stderr). Exit 2: the
    competition's setup is at fault.
    """
    from ntire_bench.codabench.ingest import IngestionOptions, ingest_program

    options = IngestionOptions(device=device, timing=timing, warmup=warmup, repeats=repeats, runs=runs,
                               threads=threads, timeout_s=timeout_s, sandbox=sandbox, seed=seed)
    _report_outcome(ingest_program(submission_dir, input_dir, output_dir, edition, dataset=dataset, options=options,
                                   log=lambda m: click.echo(m, err=True)))


def _queue_vhost(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from ntire_bench.codabench.validate_common import is_uuid

    if value is not None and not is_uuid(value):
        raise click.BadParameter(f"{value!r} is not a UUID: give the queue's vhost (the UUID on its Codabench page), "
                                 "not its name", ctx=ctx, param=param)
    return value


_TIMES = ["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


@codabench_group.command("bundle")
@click.option("--edition", default=DEFAULT_BUNDLE_EDITION, show_default=True, metavar="NAME|FILE.yaml",
              help="Scoring edition (a file is bundled with the programs).")
@click.option("--out", "out_zip", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bundle zip to write.")
@click.option("--title", default=None, help="Competition title.")
@click.option("--docker-image", default=None, metavar="REGISTRY/NAME:TAG",
              help="The image the programs run in, built from the bundle's worker_image/ and pushed where the "
                   f"workers can pull it [default: the placeholder {DEFAULT_DOCKER_IMAGE}].")
@click.option("--base-image", default=None, metavar="IMAGE",
              help=f"CUDA PyTorch image worker_image/Dockerfile builds on [default: {WORKER_BASE_IMAGE}].")
@click.option("--wheel", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The ntire-bench wheel the image installs [default: built from this checkout].")
@click.option("--queue", default=None, metavar="VHOST", callback=_queue_vhost,
              help="Vhost (a UUID) of the Codabench queue the whole competition runs on, every phase included. "
                   f"Without one, Codabench's default queue runs it and cuts every phase's time limit to "
                   f"{DEFAULT_QUEUE_TIME_LIMIT_S} s (the Final phase's 3600 s included).")
@click.option("--contact-email", default=None, help="Organisers' contact address.")
@click.option("--dev-start", type=click.DateTime(_TIMES), default=None, help="Development phase start (UTC).")
@click.option("--test-start", type=click.DateTime(_TIMES), default=None,
              help="Final (code) phase start (UTC); the development phase ends one second before.")
@click.option("--test-end", type=click.DateTime(_TIMES), default=None, help="Final phase end (UTC).")
@click.option("--lock-phases/--no-lock-phases", default=True, show_default=True,
              help="One scoring program per phase kind, told its phase: an upload can never pass for code output.")
def codabench_bundle_command(edition, out_zip, title, docker_image, base_image, wheel, queue, contact_email,
                             dev_start, test_start, test_end, lock_phases):
    """Write the Codabench competition bundle: competition.yaml, pages, programs, README and worker_image/.

    The programs run ntire-bench from the competition's docker image and install nothing (workers
    may have no network): build worker_image/ (Dockerfile, pinned requirements, this harness's
    wheel), push it, and pass its name as --docker-image. The HR reference zips and LR input zips
    are the organiser's to add (listed on stderr).
    """
    import dataclasses

    from ntire_bench.codabench.spec import BundleError, BundleSpec, ntire_phases
    from ntire_bench.codabench.bundle import competition_yaml, organiser_data_files, write_bundle
    from ntire_bench.codabench.validate import competition_warnings

    dates = {k: v for k, v in (("dev_start", dev_start), ("test_start", test_start), ("test_end", test_end)) if v}
    changes = {"phases": ntire_phases(**dates)} if dates else {}
    for key, value in (("title", title), ("docker_image", docker_image), ("base_image", base_image),
                       ("queue", queue), ("contact_email", contact_email)):
        if value:
            changes[key] = value
    spec = dataclasses.replace(BundleSpec(edition=edition, lock_phases=lock_phases), **changes)
    try:
        path = write_bundle(spec, out_zip, wheel=wheel)
    except (BundleError, OSError) as exc:
        raise DataError(str(exc)) from None
    click.echo(f"bundle written to {path}")
    for name in organiser_data_files(spec):
        click.echo(f"add before uploading: {name}", err=True)
    if spec.docker_image == DEFAULT_DOCKER_IMAGE:
        click.echo(f"before uploading: build worker_image/, push it and regenerate with --docker-image "
                   f"REGISTRY/NAME:TAG (docker_image is the placeholder {DEFAULT_DOCKER_IMAGE}; see README.md)", err=True)
    for warning in competition_warnings(competition_yaml(spec)):
        click.echo(f"warning: {warning}", err=True)


@codabench_group.command("check")
@click.argument("bundle_zip", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def codabench_check_command(bundle_zip):
    """Check a bundle zip against what Codabench enforces when it unpacks one (docs/codabench.md).

    Prints each problem on stdout (exit 1 when there is one) and each warning, something Codabench
    accepts but silently changes, on stderr.
    """
    from ntire_bench.codabench.archive import check_bundle
    from ntire_bench.codabench.spec import BundleError

    try:
        report = check_bundle(bundle_zip)
    except BundleError as exc:
        raise DataError(str(exc)) from None
    for problem in report.problems:
        click.echo(problem)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.problems:
        click.echo(f"{bundle_zip}: {len(report.problems)} problem(s); Codabench would refuse or break on it", err=True)
        sys.exit(1)
    click.echo(f"{bundle_zip}: valid")


COMMANDS = (score_command, gate_command, evaluate_command, codabench_group)
