"""Command-line interface: a thin click layer over the Python API."""

from __future__ import annotations

import difflib
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


def _discover(locations, names=(), hidden=(), sandbox="auto"):
    from .discovery import discover, select
    from .plugins import PluginError

    try:
        entries = discover(locations, hidden=hidden, sandbox=sandbox)
        return select(entries, names) if names else entries
    except PluginError as exc:
        raise DataError(str(exc)) from exc


def _hidden_from_specs(specs, out_dir: Path) -> list[Path]:
    """Dataset HR directories (and roots) and the results directory: never visible to submission code."""
    from .data import DatasetError

    hidden = {out_dir.resolve()}
    for spec in specs:
        try:
            hr = spec.hr_path()
        except DatasetError:
            continue
        hidden.add(hr)
        lr = spec.lr_path()
        if lr is not None and lr.parent == hr.parent:
            hidden.add(hr.parent)
    return sorted(hidden)


def _measure_options(fn):
    """Options shared by `run` and `bench`: device, timing and isolation."""
    options = [
        click.option("--model-zoo", "model_zoo", multiple=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Directory searched for checkpoints (repeatable); also $NTIRE_BENCH_MODEL_ZOO."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--timing", type=click.Choice(["adaptive", "fixed"]), default="adaptive", show_default=True,
                     help="adaptive: sample each image until its median is known to --target; fixed: exactly "
                          "--warmup and --repeats."),
        click.option("--target", type=click.FloatRange(min=1e-4, max=0.5), default=None,
                     help="Adaptive: relative half-width of the median's 95%% interval [default: 0.005 on CUDA, "
                          "0.01 on CPU]."),
        click.option("--rigorous", is_flag=True, help="Preset: adaptive to ±0.25%%, caps doubled, --runs 5."),
        click.option("--fast", is_flag=True, help="Preset: fixed, 1 warm-up and 3 repeats (a quick look, not a ranking)."),
        click.option("--warmup", type=click.IntRange(min=0), default=None,
                     help="Untimed passes per image (adaptive: the cap) [default: 5 on CUDA, 2 on CPU]."),
        click.option("--repeats", type=click.IntRange(min=1), default=None,
                     help="Timed passes per image (adaptive: the cap) [default: 20 on CUDA, 10 on CPU]."),
        click.option("--runs", type=click.IntRange(min=1), default=None,
                     help="Whole timing passes, each in a fresh process; their spread is reported "
                          "[default: the edition's, else 1]."),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Host threads for each submission [default: all cores but one on CPU, "
                          "torch's choice on CUDA]."),
        click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=3600, show_default=True,
                     help="Wall-clock limit per submission, in seconds."),
        click.option("--memory-limit", "memory_gb", type=click.FloatRange(min=0.5), default=None,
                     help="Address-space cap per submission in GiB (CPU runs) [default: 75% of RAM]."),
        click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "landlock", "none"]), default="auto",
                     show_default=True, help="How submission processes are confined (docs/isolation.md)."),
        click.option("--no-isolation", is_flag=True,
                     help="Run submissions in this process (trusted code only: no sandbox, timeout or memory cap)."),
        click.option("--cudnn-benchmark", is_flag=True,
                     help="Let cuDNN autotune per input shape (off by default for run-to-run stability)."),
        click.option("--seed", type=int, default=None, help="Seed of the timing noise and probes [default: fresh]."),
        click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run_config(out_dir: Path, options: dict, force: bool = False, default_runs: int = 1):
    from .runner import RunConfig

    timing, target, warmup, repeats = options["timing"], options["target"], options["warmup"], options["repeats"]
    runs = options["runs"]
    if options["rigorous"] and options["fast"]:
        raise click.UsageError("pass --rigorous or --fast, not both")
    if options["rigorous"]:
        timing, target = "adaptive", target or 0.0025
        warmup, repeats = warmup or 10, repeats or 40
        runs = runs or 5
    if options["fast"]:
        timing, warmup, repeats = "fixed", 1 if warmup is None else warmup, 3 if repeats is None else repeats
    config = RunConfig(
        out_dir=out_dir, device=options["device"], model_zoo=tuple(options["model_zoo"]), warmup=warmup,
        repeats=repeats, runs=runs or default_runs, threads=options["threads"], timing=timing, target=target,
        timeout_s=options["timeout_s"], isolate=not options["no_isolation"], sandbox=options["sandbox"],
        force=force, cudnn_benchmark=options["cudnn_benchmark"], seed=options["seed"],
        progress=not options["no_progress"], log=lambda m: click.echo(m, err=True),
    )
    if options["memory_gb"] is not None:
        config.memory_limit_bytes = int(options["memory_gb"] * 2**30)
    return config


def _edition_or_error(name):
    from .editions import EditionError, load_edition

    try:
        return load_edition(name)
    except EditionError as exc:
        raise DataError(str(exc)) from None


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
@click.option("--edition", default=None, metavar="NAME|FILE.yaml",
              help="Scoring edition for the leaderboard (and its --runs default) [default: default].")
@click.option("--baseline", default=None, help="Submission that normalises the scores [default: the edition's].")
@click.option("--force", is_flag=True, help="Re-measure even what the results directory already holds.")
@click.option("--executor", "executor_name", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine, one job after another; ray: the jobs spread over a Ray cluster "
                   "(docs/ray.md).")
@click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
              help="Ray cluster to join [default: $RAY_ADDRESS, else a local Ray instance is started].")
@click.option("--ray-gpu-model", default=None, metavar="NAME",
              help="GPU model every job is pinned to, e.g. 'NVIDIA RTX A6000' [default: this machine's GPU, else "
                   "the only model the cluster advertises].")
@_measure_options
def run_command(submissions, names, dataset_names, datasets_file, out_dir, leaderboard_dir, edition, baseline, force,
                executor_name, ray_address, ray_gpu_model, **options):
    """Evaluate SUBMISSIONS (directories, plugin files or team declarations) and write results and a leaderboard.

    Quality, runtime and complexity are stored per submission in --out; a re-run skips
    what is already measured with the same code, weights, data and settings.
    """
    from .data import DatasetError, load_dataset_specs
    from .environment import resolve_device
    from .images import ImageError
    from .runner import prepare_datasets, run_benchmark

    chosen_edition = _edition_or_error(edition)
    if datasets_file is None and DEFAULT_DATASETS_FILE.is_file():
        datasets_file = DEFAULT_DATASETS_FILE
    config = _run_config(out_dir, options, force, default_runs=chosen_edition.runs)
    if executor_name != "ray" and (ray_address or ray_gpu_model):
        raise click.UsageError("--ray-address and --ray-gpu-model need --executor ray")
    try:
        executor = None
        if executor_name == "ray":  # the device is resolved on the cluster's nodes, not here
            from .ray_executor import RayExecutor

            executor = RayExecutor(address=ray_address, gpu_model=ray_gpu_model)
        else:
            resolve_device(options["device"])
        specs = load_dataset_specs(datasets_file)
        chosen = dataset_names or ("demo",)
        unknown = [n for n in chosen if n not in specs]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(specs), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(specs))}"
            raise DataError(f"unknown dataset {unknown[0]!r} (datasets file: {datasets_file or 'none'}); {hint}")
        hidden = _hidden_from_specs(specs.values(), out_dir)
        entries = _discover(submissions, names, hidden, options["sandbox"])
        datasets = prepare_datasets([specs[n] for n in chosen], progress=not options["no_progress"])
        records = run_benchmark(entries, datasets, config, executor)
    except (DatasetError, ImageError, ValueError) as exc:
        raise DataError(str(exc)) from exc
    for record in records:
        status = record.status if not record.error or record.status == "ok" else f"{record.status} ({record.error})"
        click.echo(f"{record.submission}: {status}", err=True)
    _print_leaderboard(out_dir, chosen_edition, baseline, leaderboard_dir)


def _print_leaderboard(results_dir: Path, edition, baseline: str | None, leaderboard_dir: Path) -> None:
    """Rank everything in the results directory, as `score` would: earlier runs' results count too."""
    from . import report
    from .editions import EditionError
    from .scoring import ScoringError, score_results
    from .store import ResultsError, ResultsStore

    try:
        loaded = ResultsStore(results_dir).load_all()
        for problem in loaded.problems:
            click.echo(f"warning: {problem.line()} (left in place; not ranked)", err=True)
        board = score_results(loaded.results, edition=edition, baseline=baseline, source=str(results_dir))
    except (ScoringError, ResultsError, EditionError) as exc:
        click.echo(f"leaderboard not written: {exc}", err=True)
        return
    paths = report.write_leaderboard(board, leaderboard_dir)
    click.echo(report.format_table(board))
    click.echo(f"leaderboard written to {', '.join(str(p) for p in paths.values())}", err=True)


@main.command("list")
@click.argument("locations", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--model-zoo", "model_zoo", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory searched for checkpoints (repeatable); also $NTIRE_BENCH_MODEL_ZOO.")
@click.option("--sandbox", type=click.Choice(["auto", "bubblewrap", "landlock", "none"]), default="auto",
              show_default=True, help="How plugins that must be imported to be read are confined.")
def list_command(locations, model_zoo, sandbox):
    """Show every submission found in LOCATIONS [default: submissions/] with its status.

    Declarations are read without running plugin code where they are literal; others are
    imported in a sandboxed worker. Exits 1 when any plugin is broken, so it can guard CI.
    """
    from .plugins import model_zoo_dirs, resolve_checkpoint

    entries = _discover(locations or (Path("submissions"),), sandbox=sandbox)
    zoo = model_zoo_dirs(model_zoo)
    rows = []
    for entry in entries:
        info = entry.info
        if info is None:
            rows.append((entry.name, "-", "broken", "-", "-", entry.error or ""))
            continue
        base = Path(info.code_root) if info.kind == "ntire-team" and info.code_root else None
        if not info.requires_weights:
            weights = "not needed"
        else:
            weights = "found" if resolve_checkpoint(info.checkpoint, zoo, base) else f"missing ({info.checkpoint})"
        extras = [f"range 0..{info.data_range:g}", f"x{info.scale}"]
        if info.pad_to_multiple > 1:
            extras.append(f"pad to {info.pad_to_multiple}")
        if info.custom_forward:
            extras.append("own forward")
        if info.deploy:
            extras.append(f"deploy {'+'.join(info.deploy)}")
        if not info.strict:
            extras.append("strict=False")
        if info.trust_pickle:
            extras.append("trust_pickle")
        if info.reference:
            extras.append("reference")
        rows.append((info.name, info.team, "ok", weights, ", ".join(extras), info.description))
    header = ("submission", "team", "status", "weights", "input", "description")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header) - 1)]
    for row in [header] + rows:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-1])]
        click.echo("  ".join(cells).rstrip())
    if any(not e.ok for e in entries):
        sys.exit(1)


@main.command("import-ntire")
@click.argument("checkout", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for the declarations (one .yaml per select_model branch) and IMPORT.md.")
@click.option("--overwrite", is_flag=True, help="Replace declarations you have edited since the last import.")
def import_ntire_command(checkout, out_dir, overwrite):
    """Turn an official NTIRE ESR checkout (test_demo.py, models/, model_zoo/) into submission declarations.

    Never runs the checkout's code: select_model() is read as source. Each branch becomes one
    reviewable YAML that points at the team's files in CHECKOUT; then run
    `ntire-bench run OUT --dataset NAME`.
    """
    from .ntire_declaration import DeclarationError
    from .ntire_import import import_checkout

    try:
        report = import_checkout(checkout, out_dir, overwrite=overwrite)
    except DeclarationError as exc:
        raise DataError(str(exc)) from None
    modes: dict[str, int] = {}
    for declaration in report.declarations:
        key = "error" if declaration.error else declaration.build
        modes[key] = modes.get(key, 0) + 1
        note = f" ({declaration.error})" if declaration.error else ""
        click.echo(f"{declaration.team_id:>4}  {declaration.name:<28} {declaration.build}{note}")
    for _, reason in report.skipped:
        click.echo(f"   -  not imported: {reason}")
    for path in report.kept:
        click.echo(f"kept {path} (edited; pass --overwrite to replace it)", err=True)
    summary = ", ".join(f"{n} {mode}" for mode, n in sorted(modes.items()))
    click.echo(f"{len(report.declarations)} declarations in {out_dir} ({summary}); see {report.summary}", err=True)


@main.command("bench")
@click.argument("submission")
@click.option("--submissions", "locations", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Where to look SUBMISSION up by name (repeatable) [default: submissions/].")
@click.option("--size", default="256x256", show_default=True, help="LR input size HEIGHTxWIDTH of random inputs.")
@click.option("--count", type=click.IntRange(min=1), default=4, show_default=True, help="Number of random inputs.")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Time real LR images from this directory instead of random inputs.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full measurement to this JSON file.")
@_measure_options
def bench_command(submission, locations, size, count, images, json_out, **options):
    """Time SUBMISSION (a name, a plugin file or a declaration) alone: no dataset, no metrics, weights optional."""
    import dataclasses

    import numpy as np

    from .images import ImageError, read_image
    from .plugins import YAML_SUFFIXES
    from .protocol import WorkerFailure
    from .runner import bench_submission

    path = Path(submission)
    if path.suffix in (".py", *YAML_SUFFIXES) or path.is_dir():
        entries = _discover([path], sandbox=options["sandbox"])
        if len(entries) != 1:
            raise DataError(f"{path}: declares {len(entries)} submissions; name one with --submissions {path} NAME")
        entry = entries[0]
    else:
        entry = _discover(locations or (Path("submissions"),), [submission], sandbox=options["sandbox"])[0]
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
        rng = np.random.default_rng(options["seed"] or 0)
        inputs = [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]
    config = _run_config(Path("."), options)
    try:
        result = bench_submission(entry, inputs, config)
    except WorkerFailure as exc:
        click.echo(f"{entry.name}: failed: {exc}", err=True)
        sys.exit(1)
    except ValueError as exc:
        raise DataError(str(exc)) from exc
    rt, env, settings = result["runtime_ms"], result["environment"], result["settings"]
    click.echo(f"{result['submission']} on {env.device_name} ({env.device}, {settings.threads or 'default'} threads), "
               f"{len(inputs)} inputs, {settings.timing} timing (warm-up cap {settings.warmup}, repeats cap "
               f"{settings.repeats})")
    interval = f" [{rt.ci_low:.3f}, {rt.ci_high:.3f}]" if rt.ci_low is not None else ""
    click.echo(f"  runtime: mean of per-input medians {rt.mean:.3f} ms{interval}, median {rt.median:.3f} ms, "
               f"min {rt.min:.3f} ms")
    if len(rt.runs) > 1:
        flag = "  UNSTABLE" if rt.unstable else ""
        click.echo(f"  passes: {', '.join(f'{v:.3f}' for v in rt.runs)} ms; between-pass CV {rt.run_cv:.2%}{flag}")
    if json_out:
        payload = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in result.items()}
        json_out.write_text(json.dumps(payload, indent=1, default=str))


def _threshold_overrides(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    from .editions import parse_threshold

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
    (missing or failed baseline, mixed devices or settings, bad CSV). See docs/scoring.md.
    """
    from . import report
    from .editions import EditionError
    from .published import PublishedTableError, load_metrics_csv
    from .scoring import ScoringError, score_results
    from .store import ResultsError, ResultsStore

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


@main.command("gate")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results directory written by `ntire-bench run`.")
@_edition_options
def gate_command(results_dir, edition, thresholds):
    """Check PSNR thresholds for CI: exit 0 when every evaluated submission meets them.

    Exit 1 when any submission falls short or failed to run (one line per failure), 2 on
    usage or data errors (missing or empty results directory, unreadable file, or no
    threshold at all: a gate that checks nothing never passes).
    """
    from .editions import EditionError
    from .gate import GateError, check_gate
    from .store import ResultsError, ResultsStore

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


@main.command("evaluate")
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

    from .data import DatasetError, load_dataset_specs
    from .evaluate import ReferenceDataError, ReferenceSet, evaluate_uploads
    from .store import ResultsStore

    if hr_dir is not None and dataset_names:
        raise click.UsageError("pass --dataset NAME or --hr DIR, not both")
    if hr_dir is None and not dataset_names:
        raise click.UsageError("pass --dataset NAME (from the datasets file) or --hr DIR")
    name = name or _results_name(upload)
    try:
        if hr_dir is not None:
            references = [ReferenceSet.from_folder(hr_dir.name, hr_dir, scale)]
        else:
            if datasets_file is None and DEFAULT_DATASETS_FILE.is_file():
                datasets_file = DEFAULT_DATASETS_FILE
            specs = load_dataset_specs(datasets_file)
            unknown = [n for n in dataset_names if n not in specs]
            if unknown:
                close = difflib.get_close_matches(unknown[0], list(specs), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(specs))}"
                raise DataError(f"unknown dataset {unknown[0]!r} (datasets file: {datasets_file or 'none'}); {hint}")
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


@main.group("codabench")
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
@click.option("--edition", default="ntire2026", show_default=True, metavar="NAME|FILE.yaml",
              help="Scoring edition: weights, thresholds and baseline of Score_Final.")
@click.option("--dataset", default="DIV2K_LSDIR_valid", show_default=True,
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
    from .codabench import score_program

    _report_outcome(score_program(input_dir, output_dir, edition, dataset=dataset, baseline=baseline,
                                  thresholds=thresholds, phase=phase, workers=workers))


@codabench_group.command("ingest")
@click.option("--submission", "submission_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The submitted code: submission.py (or a team declaration submission.yaml) and its weights.")
@click.option("--input", "input_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The LR inputs: one folder per dataset (or the images directly), optionally baseline/.")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the results, the SR images and the manifest for the scoring program go.")
@click.option("--edition", default="ntire2026", show_default=True, metavar="NAME|FILE.yaml",
              help="Edition whose timing passes (runs) are the default.")
@click.option("--dataset", default="DIV2K_LSDIR_valid", show_default=True,
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
    from .codabench import IngestionOptions, ingest_program

    options = IngestionOptions(device=device, timing=timing, warmup=warmup, repeats=repeats, runs=runs,
                               threads=threads, timeout_s=timeout_s, sandbox=sandbox, seed=seed)
    _report_outcome(ingest_program(submission_dir, input_dir, output_dir, edition, dataset=dataset, options=options,
                                   log=lambda m: click.echo(m, err=True)))


@codabench_group.command("bundle")
@click.option("--edition", default="ntire2026", show_default=True, metavar="NAME|FILE.yaml",
              help="Scoring edition (a file is bundled with the programs).")
@click.option("--out", "out_zip", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bundle zip to write.")
@click.option("--title", default=None, help="Competition title.")
@click.option("--docker-image", default=None, help="Image the programs run in.")
@click.option("--requirement", default=None,
              help="What the programs pip-install first [default: this ntire-bench version].")
@click.option("--no-install", is_flag=True, help="The image already has ntire-bench: install nothing.")
@click.option("--queue", default=None, help="Codabench queue (a GPU worker's vhost) for the code phase.")
@click.option("--contact-email", default=None, help="Organisers' contact address.")
@click.option("--dev-start", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M"]), default=None,
              help="Development phase start (UTC).")
@click.option("--test-start", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M"]), default=None,
              help="Final (code) phase start, the development phase's end (UTC).")
@click.option("--test-end", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%d %H:%M"]), default=None,
              help="Final phase end (UTC).")
@click.option("--lock-phases/--no-lock-phases", default=True, show_default=True,
              help="One scoring program per phase kind, told its phase: an upload can never pass for code output.")
def codabench_bundle_command(edition, out_zip, title, docker_image, requirement, no_install, queue, contact_email,
                             dev_start, test_start, test_end, lock_phases):
    """Write the Codabench competition bundle: competition.yaml, pages, scoring and ingestion programs, README.

    The HR reference zips and LR input zips are the organiser's to add (listed on stderr).
    """
    import dataclasses

    from .codabench_bundle import BundleError, BundleSpec, ntire_phases, organiser_data_files, write_bundle

    if no_install and requirement:
        raise click.UsageError("pass --requirement SPEC or --no-install, not both")
    spec = BundleSpec(edition=edition, lock_phases=lock_phases)
    dates = {k: v for k, v in (("dev_start", dev_start), ("test_start", test_start), ("test_end", test_end)) if v}
    changes = {"phases": ntire_phases(**dates)} if dates else {}
    if title:
        changes["title"] = title
    if docker_image:
        changes["docker_image"] = docker_image
    if no_install or requirement:
        changes["harness_requirement"] = requirement or None
    if queue:
        changes["queue"] = queue
    if contact_email:
        changes["contact_email"] = contact_email
    try:
        path = write_bundle(dataclasses.replace(spec, **changes), out_zip)
    except (BundleError, OSError) as exc:
        raise DataError(str(exc)) from None
    click.echo(f"bundle written to {path}")
    for name in organiser_data_files(dataclasses.replace(spec, **changes)):
        click.echo(f"add before uploading: {name}", err=True)


if __name__ == "__main__":
    main()
