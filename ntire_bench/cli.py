"""Command-line interface: a thin click layer over the Python API."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__

DEFAULT_DATASETS_FILE = Path("datasets.yaml")


class DataError(click.ClickException):
    """A usage or data problem: one line on stderr, exit status 2."""

    exit_code = 2


def _parse_size(value: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in value.lower().split("x"))
        if height < 1 or width < 1:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HEIGHTxWIDTH, e.g. 256x256") from None
    return height, width


def _discover(locations, names=()):
    from .plugins import PluginError, discover, select

    try:
        entries = discover(locations)
        return select(entries, names) if names else entries
    except PluginError as exc:
        raise DataError(str(exc)) from exc


def _measure_options(fn):
    """Options shared by `run` and `bench`: device, timing and isolation."""
    options = [
        click.option("--model-zoo", "model_zoo", multiple=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Directory searched for checkpoints (repeatable); also $NTIRE_BENCH_MODEL_ZOO."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--warmup", type=click.IntRange(min=0), default=None,
                     help="Untimed passes per image before timing [default: 5 on CUDA, 2 on CPU]."),
        click.option("--repeats", type=click.IntRange(min=1), default=None,
                     help="Timed passes per image [default: 20 on CUDA, 10 on CPU]."),
        click.option("--runs", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Whole timing passes, each in a fresh process; their spread is reported."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Host threads for each submission [default: all cores but one on CPU, "
                          "torch's choice on CUDA]."),
        click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=3600, show_default=True,
                     help="Wall-clock limit per submission, in seconds."),
        click.option("--memory-limit", "memory_gb", type=click.FloatRange(min=0.5), default=None,
                     help="Address-space cap per submission in GiB (CPU runs) [default: 75% of RAM]."),
        click.option("--no-isolation", is_flag=True,
                     help="Run submissions in this process (trusted code only: no timeout, no memory cap)."),
        click.option("--cudnn-benchmark", is_flag=True,
                     help="Let cuDNN autotune per input shape (off by default for run-to-run stability)."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run_config(out_dir: Path, model_zoo, device, warmup, repeats, runs, threads, timeout_s, memory_gb,
                no_isolation, cudnn_benchmark, no_progress, force=False):
    from .runner import RunConfig

    config = RunConfig(
        out_dir=out_dir, device=device, model_zoo=tuple(model_zoo), warmup=warmup, repeats=repeats, runs=runs,
        threads=threads, timeout_s=timeout_s, isolate=not no_isolation, force=force,
        cudnn_benchmark=cudnn_benchmark, progress=not no_progress, log=lambda m: click.echo(m, err=True),
    )
    if memory_gb is not None:
        config.memory_limit_bytes = int(memory_gb * 2**30)
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ntire-bench")
def main() -> None:
    """Evaluate NTIRE-style x4 efficient super-resolution submissions.

    Typical use: `ntire-bench run submissions/`, then `ntire-bench score`.
    """


@main.command("run")
@click.argument("submissions", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--only", "names", multiple=True, help="Evaluate only this submission name (repeatable).")
@click.option("--dataset", "dataset_names", multiple=True,
              help="Dataset name from the datasets file (repeatable) [default: demo].")
@click.option("--datasets-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Dataset registry [default: ./datasets.yaml when present].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Where the per-submission results JSON files go.")
@click.option("--leaderboard", "leaderboard_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("leaderboard"), show_default=True, help="Where the leaderboard is written.")
@click.option("--baseline", default="rlfn", show_default=True, help="Submission that normalises the scores.")
@click.option("--force", is_flag=True, help="Re-measure even what the results directory already holds.")
@_measure_options
def run_command(submissions, names, dataset_names, datasets_file, out_dir, leaderboard_dir, baseline, force,
                model_zoo, device, warmup, repeats, runs, threads, timeout_s, memory_gb, no_isolation,
                cudnn_benchmark, no_progress):
    """Evaluate SUBMISSIONS (directories or plugin files) and write results and a leaderboard.

    Quality, runtime and complexity are stored per submission in --out; a re-run skips
    what is already measured with the same code, weights, data and settings.
    """
    from .data import DatasetError, load_dataset_specs
    from .environment import resolve_device
    from .images import ImageError
    from .runner import prepare_datasets, run_benchmark

    if datasets_file is None and DEFAULT_DATASETS_FILE.is_file():
        datasets_file = DEFAULT_DATASETS_FILE
    config = _run_config(out_dir, model_zoo, device, warmup, repeats, runs, threads, timeout_s, memory_gb,
                         no_isolation, cudnn_benchmark, no_progress, force)
    try:
        resolve_device(device)
        specs = load_dataset_specs(datasets_file)
        chosen = dataset_names or ("demo",)
        unknown = [n for n in chosen if n not in specs]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], list(specs), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(specs))}"
            raise DataError(f"unknown dataset {unknown[0]!r} (datasets file: {datasets_file or 'none'}); {hint}")
        entries = _discover(submissions, names)
        datasets = prepare_datasets([specs[n] for n in chosen], progress=not no_progress)
        records = run_benchmark(entries, datasets, config)
    except (DatasetError, ImageError, ValueError) as exc:
        raise DataError(str(exc)) from exc
    for record in records:
        status = record["status"] if not record.get("error") or record["status"] == "ok" else (
            f"{record['status']} ({record['error']})")
        click.echo(f"{record['submission']}: {status}", err=True)
    _print_leaderboard(out_dir, baseline, leaderboard_dir)


def _print_leaderboard(results_dir: Path, baseline: str, leaderboard_dir: Path) -> None:
    """Rank everything in the results directory, as `score` would: earlier runs' results count too."""
    from . import report, scoring
    from .results import ResultsError, load_results

    try:
        board = scoring.score_results(load_results(results_dir), edition="default", baseline=baseline)
    except (scoring.ScoringError, ResultsError) as exc:
        click.echo(f"leaderboard not written: {exc}", err=True)
        return
    paths = report.write_leaderboard(board, leaderboard_dir)
    click.echo(report.format_table(board))
    click.echo(f"leaderboard written to {', '.join(str(p) for p in paths.values())}", err=True)


@main.command("list")
@click.argument("locations", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--model-zoo", "model_zoo", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory searched for checkpoints (repeatable); also $NTIRE_BENCH_MODEL_ZOO.")
def list_command(locations, model_zoo):
    """Show every submission found in LOCATIONS [default: submissions/] with its status.

    Exits 1 when any plugin is broken, so it can guard a submission in CI.
    """
    from .plugins import model_zoo_dirs, resolve_checkpoint

    entries = _discover(locations or (Path("submissions"),))
    zoo = model_zoo_dirs(model_zoo)
    rows = []
    for entry in entries:
        sub = entry.submission
        if sub is None:
            rows.append((entry.name, "-", "broken", "-", "-", entry.error or ""))
            continue
        if not sub.requires_weights:
            weights = "not needed"
        else:
            weights = "found" if resolve_checkpoint(sub, zoo) else f"missing ({sub.checkpoint})"
        extras = [f"range 0..{sub.data_range:g}", f"x{sub.scale}"]
        if sub.pad_to_multiple > 1:
            extras.append(f"pad to {sub.pad_to_multiple}")
        if sub.reference:
            extras.append("reference")
        rows.append((sub.name, sub.team, "ok", weights, ", ".join(extras), sub.description))
    header = ("submission", "team", "status", "weights", "input", "description")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header) - 1)]
    for row in [header] + rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-1])]
        click.echo("  ".join(cells).rstrip())
    if any(not e.ok for e in entries):
        sys.exit(1)


@main.command("bench")
@click.argument("submission")
@click.option("--submissions", "locations", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Where to look SUBMISSION up by name (repeatable) [default: submissions/].")
@click.option("--size", default="256x256", show_default=True, help="LR input size HEIGHTxWIDTH of random inputs.")
@click.option("--count", type=click.IntRange(min=1), default=4, show_default=True, help="Number of random inputs.")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Time real LR images from this directory instead of random inputs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full measurement to this JSON file.")
@_measure_options
def bench_command(submission, locations, size, count, images, seed, json_out, model_zoo, device, warmup, repeats,
                  runs, threads, timeout_s, memory_gb, no_isolation, cudnn_benchmark, no_progress):
    """Time SUBMISSION (a name or a plugin file) alone: no dataset, no metrics, weights optional."""
    import numpy as np

    from .images import ImageError, read_image
    from .runner import bench_submission
    from .worker import WorkerFailure

    path = Path(submission)
    if path.suffix == ".py" or path.is_dir():
        entries = _discover([path])
        if len(entries) != 1:
            raise DataError(f"{path}: declares {len(entries)} submissions; name one with --submissions {path} NAME")
        entry = entries[0]
    else:
        entry = _discover(locations or (Path("submissions"),), [submission])[0]
    if images is not None:
        from .data import IMAGE_SUFFIXES

        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{images}: no PNG/JPEG/BMP images to time")
        try:
            inputs = [read_image(p) for p in files]
        except ImageError as exc:
            raise DataError(str(exc)) from exc
    else:
        height, width = _parse_size(size)
        rng = np.random.default_rng(seed)
        inputs = [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]
    config = _run_config(Path("."), model_zoo, device, warmup, repeats, runs, threads, timeout_s, memory_gb,
                         no_isolation, cudnn_benchmark, no_progress)
    try:
        result = bench_submission(entry, inputs, config)
    except WorkerFailure as exc:
        click.echo(f"{entry.name}: failed: {exc}", err=True)
        sys.exit(1)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    rt = result["runtime_ms"]
    env = result["environment"]
    click.echo(f"{result['submission']} on {env['device_name']} ({env['device']}, {env['threads']} threads), "
               f"{len(inputs)} inputs, warmup {result['settings']['warmup']}, repeats {result['settings']['repeats']}")
    click.echo(f"  runtime: mean of per-input medians {rt['mean']:.3f} ms, median {rt['median']:.3f} ms, "
               f"min {rt['min']:.3f} ms")
    if len(rt["runs"]) > 1:
        flag = "  UNSTABLE" if rt["unstable"] else ""
        runs_text = ", ".join(f"{v:.3f}" for v in rt["runs"])
        click.echo(f"  passes: {runs_text} ms; between-pass CV {rt['run_cv']:.2%}{flag}")
    if json_out:
        json_out.write_text(json.dumps(result, indent=1))


def _threshold_overrides(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    from .scoring import parse_threshold

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
                        help="Preset (default, ntire2024, ntire2025) or an edition YAML file [default: default].")(fn)


@main.command("score")
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
    (missing baseline, mixed devices, bad CSV). See docs/scoring.md.
    """
    from . import report, scoring

    if results_dir is not None and metrics_csv is not None:
        raise click.UsageError("pass either --results DIR or --metrics FILE.csv, not both")
    try:
        if metrics_csv is not None:
            results, notes, source = scoring.load_metrics_csv(metrics_csv), [], str(metrics_csv)
        else:
            source = str(results_dir or Path("results"))
            results, notes = scoring.read_results(source)
        for note in notes:
            click.echo(f"warning: {note}", err=True)
        board = scoring.score_results(results, edition=edition, baseline=baseline, thresholds=thresholds,
                                      source=source)
    except scoring.ScoringError as exc:
        raise DataError(str(exc)) from None
    if metrics_csv is not None and not board.thresholds:
        click.echo(f"note: edition '{board.edition.name}' sets no PSNR thresholds for a metrics table; "
                   "pass --edition ntire2024 or --threshold DATASET=DB to check them", err=True)
    paths = report.write_leaderboard(board, out_dir)
    click.echo(report.format_table(board))
    click.echo(f"leaderboard written to {', '.join(str(p) for p in paths.values())}", err=True)


@main.command("gate")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results directory written by `ntire-bench run`.")
@_edition_options
def gate_command(results_dir, edition, thresholds):
    """Check PSNR thresholds for CI: exit 0 when every evaluated submission meets them.

    Exit 1 when any submission falls short or failed to run (one line per failure),
    2 on usage or data errors (missing or empty results directory, unreadable file).
    """
    from . import scoring

    try:
        results, _ = scoring.read_results(results_dir, strict=True)
        verdict = scoring.check_gate(results, edition=edition, thresholds=thresholds)
    except scoring.ScoringError as exc:
        raise DataError(str(exc)) from None
    for name, reason in verdict.skipped:
        click.echo(f"skip {name}: {reason}", err=True)
    limits = ", ".join(f"{d} >= {v:g} dB" for d, v in verdict.thresholds.items())
    if not verdict.passed:
        for failure in verdict.failures:
            click.echo(failure.line())
        click.echo(f"gate failed: {len(verdict.failures)} problem(s) ({limits or 'no thresholds'})", err=True)
        sys.exit(1)
    if limits:
        click.echo(f"gate passed: {', '.join(verdict.checked)} meet {limits}")
    else:
        click.echo(f"gate passed: {', '.join(verdict.checked)} ran; no PSNR threshold applies "
                   "(pass --edition or --threshold DATASET=DB to set one)")


if __name__ == "__main__":
    main()
