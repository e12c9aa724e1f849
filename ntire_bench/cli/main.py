"""Command-line interface: a thin click layer over the Python API."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ntire_bench.util.version import __version__
from ntire_bench.cli.common import DataError, named_datasets
from ntire_bench.cli.results import COMMANDS as RESULTS_COMMANDS


def _parse_size(value: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in value.lower().split("x"))
        if height < 1 or width < 1:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HEIGHTxWIDTH, e.g. 256x256") from None
    return height, width


def _discover(locations, names=(), hidden=(), sandbox="auto"):
    from ntire_bench.runner.discovery import discover, select
    from ntire_bench.plugins.declaration import PluginError

    try:
        entries = discover(locations, hidden=hidden, sandbox=sandbox)
        return select(entries, names) if names else entries
    except PluginError as exc:
        raise DataError(str(exc)) from exc


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
                     help="Adaptive: relative half-width of each image's median's 95%% interval [default: 0.005 on "
                          "CUDA; on CPU what a ±1.5%% headline needs, 0.015·√images, at least 0.03]."),
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
    from ntire_bench.runner.context import RunConfig

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
    from ntire_bench.scoring.editions import EditionError, load_edition

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
    from ntire_bench.data.datasets import DatasetError
    from ntire_bench.results.provenance import resolve_device
    from ntire_bench.data.images import ImageError
    from ntire_bench.runner.context import hidden_paths
    from ntire_bench.runner.evaluation import run_benchmark
    from ntire_bench.data.datasets import prepare_datasets

    chosen_edition = _edition_or_error(edition)
    config = _run_config(out_dir, options, force, default_runs=chosen_edition.runs)
    config.flop_convention = chosen_edition.flop_convention
    if executor_name != "ray" and (ray_address or ray_gpu_model):
        raise click.UsageError("--ray-address and --ray-gpu-model need --executor ray")
    try:
        executor = None
        if executor_name == "ray":  # the device is resolved on the cluster's nodes, not here
            from ntire_bench.cluster.executor import RayExecutor

            executor = RayExecutor(address=ray_address, gpu_model=ray_gpu_model)
        else:
            resolve_device(options["device"])
        specs, chosen = named_datasets(datasets_file, dataset_names or ("demo",))
        hidden = hidden_paths(specs.values(), out_dir)
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
    from ntire_bench import report
    from ntire_bench.scoring.editions import EditionError
    from ntire_bench.scoring.leaderboard import ScoringError, score_results
    from ntire_bench.results.store import ResultsError, ResultsStore

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
    from ntire_bench.plugins.checkpoints import model_zoo_dirs, resolve_checkpoint

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
@click.option("--overwrite", is_flag=True,
              help="Replace declarations you have edited since the last import, and those of the same name "
                   "imported from another checkout.")
@click.option("--keep-existing", is_flag=True,
              help="Keep a declaration of the same name imported from another checkout (a baseline that several "
                   "single-team checkouts carry) and skip this checkout's branch.")
def import_ntire_command(checkout, out_dir, overwrite, keep_existing):
    """Turn an official NTIRE ESR checkout (test_demo.py, models/, model_zoo/) into submission declarations.

    Never runs the checkout's code: select_model() is read as source. Each branch becomes one
    reviewable YAML that points at the team's files in CHECKOUT; then run
    `ntire-bench run OUT --dataset NAME`. Several checkouts may go into one OUT; a name two of
    them declare (each team's copy of the baseline) needs --keep-existing or --overwrite.
    """
    from ntire_bench.ntire.declaration import DeclarationError
    from ntire_bench.ntire.importer import import_checkout

    try:
        report = import_checkout(checkout, out_dir, overwrite=overwrite, keep_existing=keep_existing)
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
    for path, source in report.kept_from_other:
        click.echo(f"kept {path} (imported from {source}; pass --overwrite to replace it)", err=True)
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

    from ntire_bench.data.images import ImageError, read_image
    from ntire_bench.plugins.declaration import YAML_SUFFIXES
    from ntire_bench.worker.protocol import WorkerFailure
    from ntire_bench.runner.bench import bench_submission

    path = Path(submission)
    if path.suffix in (".py", *YAML_SUFFIXES) or path.is_dir():
        entries = _discover([path], sandbox=options["sandbox"])
        if len(entries) != 1:
            raise DataError(f"{path}: declares {len(entries)} submissions; name one with --submissions {path} NAME")
        entry = entries[0]
    else:
        entry = _discover(locations or (Path("submissions"),), [submission], sandbox=options["sandbox"])[0]
    if images is not None:
        from ntire_bench.data.datasets import IMAGE_SUFFIXES

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


for _command in RESULTS_COMMANDS:  # score, gate, evaluate, codabench (cli_scoring.py)
    main.add_command(_command)


from ntire_bench.cli.factsheet import factsheet_command

main.add_command(factsheet_command)
