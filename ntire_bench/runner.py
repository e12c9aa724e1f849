"""Evaluating submissions on datasets: the parent side of every run.

The parent owns the datasets, the HR images, the metrics and the results store. Each
submission runs in its own confined worker (client.py) that only ever sees LR pixels.
``evaluate_submission`` is the whole story of one submission, as named steps: work out what
identifies its measurement, plan what the store can re-use, measure what is missing, verify
the timing, and record the outcome. Results are saved after every dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .audit import DatasetAudit, NotCredible, VERIFY_TOLERANCE
from .client import InProcessWorker, IsolatedWorker, WorkerLimits, python_path_entries
from .data import DatasetSpec, ImagePair, dataset_fingerprint, read_hr, resolve_pairs, validate_pairs
from .environment import collect_environment, gpu_telemetry, resolve_device, telemetry_warnings
from .images import read_image
from .measure import (PassRecord, dataset_runtime, image_runtime, now_stamp, pick_candidates, quality_rows, run_pass,
                      verify_repeats)
from .metrics import METRIC_KEYS, image_quality, mean_quality
from .plugins import PluginEntry, model_zoo_dirs, resolve_checkpoint, sha256_file
from .protocol import WorkerFailure
from .records import (FAILED, NO_WEIGHTS, OK, RUNNING, CheckpointInfo, ComplexityResult, DatasetResult, Environment,
                      PluginInfo, Settings, SubmissionResult)
from .runtime import TimingSettings, default_cpu_threads
from .store import ResultsStore, SetAside


def default_memory_limit() -> int | None:
    """Three quarters of physical memory: a runaway submission cannot take the host down."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.75)
    except (ValueError, OSError, AttributeError):
        return None


@dataclass
class RunConfig:
    """How a run measures. Everything here that changes a number is part of the cache key."""

    out_dir: Path = Path("results")
    device: str = "auto"
    model_zoo: Sequence[Path] = ()
    warmup: int | None = None
    repeats: int | None = None
    runs: int = 1
    threads: int | None = None
    timing: str = "adaptive"  # "adaptive" | "fixed"
    target: float | None = None  # adaptive: relative half-width of the median's 95% interval
    timeout_s: float = 3600.0
    memory_limit_bytes: int | None = field(default_factory=default_memory_limit)
    isolate: bool = True
    sandbox: str = "auto"
    verify: bool = True
    force: bool = False
    cudnn_benchmark: bool = False
    complexity_size: tuple[int, int] = (256, 256)
    seed: int | None = None  # the parent's noise and probe choices; None: fresh each run
    cache_dir: Path | None = None
    progress: bool = True
    log: Callable[[str], None] = print

    def threads_for(self, device: str) -> int | None:
        """Host threads for a worker: as asked, else all cores but one on CPU, torch's choice on CUDA."""
        if self.threads is not None:
            return self.threads
        return None if device.startswith("cuda") else default_cpu_threads()

    def timing_settings(self, device: str) -> TimingSettings:
        """The per-image timing rule for ``device`` (adaptive by default; see docs/runtime.md)."""
        on_cuda = device.startswith("cuda")
        target = self.target if self.target is not None else (0.005 if on_cuda else 0.01)
        fixed = TimingSettings.for_device(device, self.warmup, self.repeats, mode=self.timing, target=target)
        # The median's 95% interval needs six samples; with a lower cap, sampling simply runs to it.
        return TimingSettings(**{**fixed.to_dict(), "min_repeats": min(6, fixed.repeats)})

    def settings(self, device: str) -> Settings:
        """The measurement settings recorded with every result."""
        timing = self.timing_settings(device)
        return Settings(device=device, warmup=timing.warmup, repeats=timing.repeats, runs=self.runs,
                        threads=self.threads_for(device), cudnn_benchmark=self.cudnn_benchmark,
                        complexity_size=list(self.complexity_size), isolated=self.isolate, timing=timing.mode,
                        target_ci=timing.target if timing.mode == "adaptive" else None)


@dataclass
class PreparedDataset:
    """A dataset resolved to its pairs, with the fingerprint of its files."""

    spec: DatasetSpec
    pairs: list[ImagePair]
    fingerprint: str


def prepare_datasets(specs: Sequence[DatasetSpec], cache_dir: Path | None = None, progress: bool = True
                     ) -> list[PreparedDataset]:
    """Resolve and check every dataset up front, so a bad path or image fails before any model runs."""
    prepared = []
    for spec in specs:
        pairs = resolve_pairs(spec, cache_dir=cache_dir, progress=progress)
        validate_pairs(pairs, spec.scale, progress=progress)
        prepared.append(PreparedDataset(spec, pairs, dataset_fingerprint(pairs)))
    return prepared


def hidden_paths(datasets: Sequence[PreparedDataset], out_dir: Path) -> list[Path]:
    """What a worker must never reach: each dataset's HR directory and root, and the results directory."""
    hidden = {Path(out_dir).resolve()}
    for dataset in datasets:
        for pair in dataset.pairs[:1]:
            hr_dir = pair.hr_path.parent.resolve()
            hidden.add(hr_dir)
            if hr_dir.parent == pair.lr_path.parent.resolve().parent:
                hidden.add(hr_dir.parent)  # the dataset root holding HR/ and LR/
    return sorted(hidden)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunContext:
    """What every submission of one run shares."""

    config: RunConfig
    device: str
    environment: Environment
    settings: Settings
    store: ResultsStore
    hidden: list[Path]


@dataclass
class Identity:
    """What identifies one submission's measurement: its run key, dataset keys and checkpoint."""

    run_key: str
    dataset_keys: dict[str, str]
    checkpoint: Path | None
    checkpoint_sha256: str | None


def run_benchmark(entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset], config: RunConfig
                  ) -> list[SubmissionResult]:
    """Evaluate every submission on every dataset; return the results (also in the store)."""
    device = resolve_device(config.device)
    ctx = RunContext(config, device, collect_environment(device, config.threads_for(device)), config.settings(device),
                     ResultsStore(config.out_dir), hidden_paths(datasets, config.out_dir))
    config.out_dir.mkdir(parents=True, exist_ok=True)
    return [evaluate_submission(entry, datasets, ctx) for entry in entries]


# ------------------------------------------------------------------ one submission


def evaluate_submission(entry: PluginEntry, datasets: Sequence[PreparedDataset], ctx: RunContext
                        ) -> SubmissionResult:
    """Plan, measure, verify and record one submission."""
    identity = measurement_identity(entry, datasets, ctx)
    plan = ctx.store.plan(entry.name, identity.run_key, identity.dataset_keys, ctx.config.force,
                          dependencies_changed=changed_dependencies)
    if not entry.ok and plan.set_aside is None and ctx.store.path(entry.name).exists():
        plan.set_aside = f"{entry.name}.json is replaced by a failed import of {Path(entry.source).name}"
    if plan.set_aside:
        _report(ctx, ctx.store.set_aside(entry.name, plan.set_aside, plan.set_aside_label))
    if plan.up_to_date is not None:
        ctx.config.log(f"{entry.name}: up to date in {ctx.store.path(entry.name)} (use --force to re-measure)")
        return plan.up_to_date
    record = new_record(entry, identity, plan.reuse, ctx)
    if not entry.ok:
        return finish(record, ctx, failure=entry.error or "the plugin could not be read")
    todo = [d for d in datasets if d.spec.name in plan.todo]
    ctx.store.save(record)
    telemetry = gpu_telemetry(_gpu_uuid(ctx)) if ctx.device.startswith("cuda") else None
    try:
        measure_submission(entry, identity, todo, record, ctx)
    except WorkerFailure as exc:
        return finish(record, ctx, failure=str(exc), telemetry_start=telemetry)
    return finish(record, ctx, telemetry_start=telemetry)


def measurement_identity(entry: PluginEntry, datasets: Sequence[PreparedDataset], ctx: RunContext) -> Identity:
    """The run key (code, declaration, weights, harness, device, settings) and one key per dataset."""
    info = entry.info
    base = Path(info.code_root) if info and info.kind == "ntire-team" and info.code_root else None
    checkpoint = resolve_checkpoint(info.checkpoint, model_zoo_dirs(ctx.config.model_zoo), base) if info else None
    checkpoint_sha = sha256_file(checkpoint) if checkpoint else None
    run_key = _digest({
        "name": entry.name, "plugin": entry.source_sha256, "declaration": info.to_dict() if info else None,
        "checkpoint": checkpoint_sha, "harness": ctx.environment.harness_fingerprint,
        "device": ctx.environment.device_name, "settings": ctx.settings,
    })
    keys = {d.spec.name: _digest({"run": run_key, "files": d.fingerprint, "scale": d.spec.scale}) for d in datasets}
    return Identity(run_key, keys, checkpoint, checkpoint_sha)


def changed_dependencies(stored: SubmissionResult) -> str | None:
    """Why a stored result is stale because a module it imported has changed since, or None."""
    for path, digest in (stored.plugin.dependencies if stored.plugin else {}).items():
        try:
            current = sha256_file(path)
        except OSError:
            return f"{path}, which it imported, is gone"
        if current != digest:
            return f"{Path(path).name}, which it imported, has changed"
    return None


def new_record(entry: PluginEntry, identity: Identity, reuse: dict[str, DatasetResult], ctx: RunContext
               ) -> SubmissionResult:
    """The record for this run, status ``running`` until it finishes, with the datasets it re-uses."""
    info = entry.info
    checkpoint = None
    if info is not None and info.checkpoint:
        checkpoint = CheckpointInfo(file=info.checkpoint, path=str(identity.checkpoint) if identity.checkpoint else None,
                                    sha256=identity.checkpoint_sha256)
    return SubmissionResult(
        submission=entry.name, status=RUNNING, team=info.team if info else None,
        reference=info.reference if info else False, data_range=info.data_range if info else None,
        checkpoint=checkpoint, plugin=PluginInfo(source=entry.source, sha256=entry.source_sha256),
        datasets=dict(reuse), settings=ctx.settings, environment=replace(ctx.environment), run_key=identity.run_key,
    )


def finish(record: SubmissionResult, ctx: RunContext, failure: str | None = None,
           telemetry_start: dict | None = None) -> SubmissionResult:
    """Settle the status, attach telemetry and stability warnings, and save."""
    if failure is not None:
        record.status, record.error = FAILED, failure
        ctx.config.log(f"{record.submission}: failed: {failure}")
    elif record.status == RUNNING:
        record.status = NO_WEIGHTS if record.error else OK
    if telemetry_start is not None:
        end = gpu_telemetry(_gpu_uuid(ctx))
        record.environment.gpu_telemetry = {"start": telemetry_start, "end": end}
        record.warnings.extend(telemetry_warnings(telemetry_start, end))
    for name, result in record.datasets.items():
        runtime = result.runtime_ms
        if runtime is not None and runtime.unstable and runtime.run_cv is not None:
            record.warnings.append(f"{name}: runtime varies by {runtime.run_cv:.1%} between passes (>2%); "
                                   "results are unstable, quiet the machine and re-run")
    ctx.store.save(record)
    return record


def _report(ctx: RunContext, moved: SetAside | None) -> None:
    if moved is not None:
        ctx.config.log(f"note: {moved.line()}")


def _gpu_uuid(ctx: RunContext) -> str | None:
    return (ctx.environment.gpu or {}).get("uuid")


# ------------------------------------------------------------------------ measuring


def worker_factory(entry: PluginEntry, identity: Identity, ctx: RunContext, log_path: Path | None = None
                   ) -> Callable[[bool], Any]:
    """A function that starts a confined worker for ``entry`` and loads it (counting complexity or not)."""
    info = entry.info
    assert info is not None
    readable = ([Path(entry.source).resolve().parent] if not entry.source.startswith("entry-point:")
                else python_path_entries(ctx.hidden))
    if info.code_root:
        readable.append(Path(info.code_root))
    if identity.checkpoint:
        readable.append(identity.checkpoint)
    limits = WorkerLimits(timeout_s=ctx.config.timeout_s, memory_bytes=ctx.config.memory_limit_bytes,
                          threads=ctx.settings.threads, readable=readable, hidden=ctx.hidden,
                          sandbox=ctx.config.sandbox, gpu=ctx.device.startswith("cuda"))
    config = {
        "source": entry.source, "name": entry.name, "info": info.to_dict(),
        "checkpoint": str(identity.checkpoint) if identity.checkpoint else None,
        "device": ctx.device, "threads": ctx.settings.threads, "cudnn_benchmark": ctx.config.cudnn_benchmark,
        "complexity_size": list(ctx.config.complexity_size),
        "timing": ctx.config.timing_settings(ctx.device).to_dict(),
    }

    def start(count_complexity: bool = True) -> tuple[Any, dict[str, Any]]:
        worker = (IsolatedWorker(limits, log_path, ctx.device) if ctx.config.isolate
                  else InProcessWorker(limits, log_path, ctx.device))
        try:
            reply, _ = worker.request("load", config={**config, "count_complexity": count_complexity})
        except BaseException:
            worker.close()
            raise
        return worker, reply["result"]

    return start


def measure_submission(entry: PluginEntry, identity: Identity, datasets: Sequence[PreparedDataset],
                       record: SubmissionResult, ctx: RunContext) -> None:
    """Load the submission, measure every dataset still to do, then verify its timed outputs afresh."""
    info = entry.info
    assert info is not None
    start = worker_factory(entry, identity, ctx, ctx.config.out_dir / "logs" / f"{entry.name}.log")
    missing_weights = info.requires_weights and identity.checkpoint is None
    if missing_weights:  # measured all the same; ``finish`` settles the status as no_weights
        zoo = ", ".join(map(str, model_zoo_dirs(ctx.config.model_zoo))) or "none given"
        record.error = (f"checkpoint {info.checkpoint} not found "
                        f"({'in ' + info.code_root if info.kind == 'ntire-team' else 'in the model zoo: ' + zoo}); "
                        "pass --model-zoo DIR for a PSNR rank")
    worker, loaded = start(True)
    rng = np.random.default_rng(ctx.config.seed)
    candidates = []
    try:
        apply_load_report(record, loaded, worker)
        for index, dataset in enumerate(datasets):
            result, passes = measure_dataset(worker, start, dataset, info.data_range, info.scale,
                                             compute_quality=not missing_weights, check_determinism=index == 0,
                                             rng=rng, ctx=ctx, label=f"{entry.name} · {dataset.spec.name}")
            result.cache_key = identity.dataset_keys[dataset.spec.name]
            record.datasets[dataset.spec.name] = result
            ctx.store.save(record)
            if ctx.config.verify and worker.isolated:
                lr_images = [read_image(p.lr_path) for p in dataset.pairs]
                candidates += pick_candidates(dataset.spec.name, lr_images, passes, rng)
    finally:
        worker.close()
    if candidates:
        verifier, _ = start(False)
        try:
            worst = verify_repeats(verifier, candidates, info.scale, info.data_range)
        finally:
            verifier.close()
        for dataset in datasets:
            audit = record.datasets[dataset.spec.name].timing_audit
            if audit is not None:
                count = sum(1 for c in candidates if c.dataset == dataset.spec.name)
                audit.verified = (f"{count} timed repeats recomputed in a fresh process: largest difference "
                                  f"{worst * 255:.2g} grey levels (tolerance {VERIFY_TOLERANCE * 255:.2g})")
    elif datasets and not worker.isolated:
        record.warnings.append("timed outputs were not recomputed in a fresh process (--no-isolation)")


def apply_load_report(record: SubmissionResult, loaded: dict[str, Any], worker: Any) -> None:
    """Copy what the worker reported at load time into the record (complexity, warnings, dependencies)."""
    complexity = loaded.get("complexity")
    if isinstance(complexity, dict):
        record.complexity = ComplexityResult(
            params=int(complexity["params"]), flops=int(complexity["flops"]),
            activations=int(complexity["activations"]), num_conv=int(complexity["num_conv"]),
            input_size=list(complexity["input_size"]), unsupported_ops=dict(complexity["unsupported_ops"]),
            peak_memory_mb=complexity.get("peak_memory_mb"))
    record.environment.threads = int(loaded.get("num_threads") or 0) or record.environment.threads
    record.warnings.extend(str(w) for w in loaded.get("warnings", []))
    record.opt_ins = sorted({str(o) for o in loaded.get("opt_ins", [])})
    if record.checkpoint is not None:
        record.checkpoint.trusted_pickle = "trust_pickle" in record.opt_ins
    record.sandbox = worker.sandbox_info
    dependencies = {}
    for path in loaded.get("dependencies", []):
        candidate = Path(str(path))
        if candidate.suffix == ".py" and candidate.is_file() and candidate.stat().st_size < 50 * 2**20:
            dependencies[str(candidate)] = sha256_file(candidate)
    if record.plugin is not None:
        record.plugin.dependencies = dependencies


def measure_dataset(worker: Any, start: Callable[[bool], tuple[Any, dict]], dataset: PreparedDataset,
                    data_range: float, scale: int, compute_quality: bool, check_determinism: bool,
                    rng: np.random.Generator, ctx: RunContext, label: str) -> tuple[DatasetResult, list[PassRecord]]:
    """Every timing pass of one dataset (the first also scores quality); the dataset's result."""
    pairs = dataset.pairs
    lr_images = [read_image(pair.lr_path) for pair in pairs]
    qualities: list[dict[str, float] | None] = [None] * len(pairs)

    def score(i: int, sr: np.ndarray) -> None:
        hr = read_hr(pairs[i], lr_images[i], scale)
        hr_tensor = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1)
        qualities[i] = image_quality(torch.from_numpy(sr), hr_tensor, border=scale)

    audit = DatasetAudit(data_range)
    cap = ctx.config.timing_settings(ctx.device).repeats
    passes: list[PassRecord] = []
    with tqdm(total=len(pairs) * ctx.config.runs, desc=label, unit="img", disable=not ctx.config.progress,
              leave=False) as bar:
        for run_index in range(ctx.config.runs):
            pass_worker = worker if run_index == 0 or not worker.isolated else start(False)[0]
            try:
                passes.append(run_pass(
                    pass_worker, lr_images, scale, cap, audit, rng, bar,
                    on_output=score if compute_quality and run_index == 0 else None,
                    check_determinism=check_determinism and run_index == 0,
                    image_label=lambda i: f"{dataset.spec.name}/{pairs[i].name}"))
            finally:
                if pass_worker is not worker:
                    pass_worker.close()
    per_image = [image_runtime(passes, i) for i in range(len(pairs))]
    measured = [q for q in qualities if q is not None]
    means = mean_quality(measured) if measured else dict.fromkeys(METRIC_KEYS)
    peaks = [p.peak_memory_mb for p in passes if p.peak_memory_mb is not None]
    result = DatasetResult(
        num_images=len(pairs), threshold=dataset.spec.threshold, runtime_ms=dataset_runtime(passes, per_image),
        peak_memory_mb=max(peaks) if peaks else None, measured_at=now_stamp(), timing_audit=audit.finish(),
        images=quality_rows([p.name for p in pairs], qualities, per_image), **means)
    return result, passes


# --------------------------------------------------------------------------- bench


def bench_submission(entry: PluginEntry, inputs: Sequence[np.ndarray], config: RunConfig) -> dict[str, Any]:
    """Runtime only: time a submission on LR arrays, ``config.runs`` passes in fresh workers.

    Needs no dataset and no weights (a missing checkpoint leaves random initial weights,
    which time the same). The parent's clock and input checks apply as in a run.
    """
    if not entry.ok or entry.info is None:
        raise WorkerFailure(entry.error or f"{entry.name}: broken plugin")
    device = resolve_device(config.device)
    ctx = RunContext(config, device, collect_environment(device, config.threads_for(device)), config.settings(device),
                     ResultsStore(config.out_dir), [])
    info = entry.info
    base = Path(info.code_root) if info.kind == "ntire-team" and info.code_root else None
    checkpoint = resolve_checkpoint(info.checkpoint, model_zoo_dirs(config.model_zoo), base)
    identity = Identity("bench", {}, checkpoint, None)
    start = worker_factory(entry, identity, ctx)
    audit = DatasetAudit(info.data_range)
    rng = np.random.default_rng(config.seed)
    cap = config.timing_settings(device).repeats
    passes = []
    with tqdm(total=len(inputs) * config.runs, desc=f"bench {entry.name}", unit="img", disable=not config.progress,
              leave=False) as bar:
        for _ in range(config.runs):
            worker, _loaded = start(False)
            try:
                passes.append(run_pass(worker, inputs, info.scale, cap, audit, rng, bar,
                                       image_label=lambda i: f"input {i}"))
            finally:
                worker.close()
    audit.finish()
    per_image = [image_runtime(passes, i) for i in range(len(inputs))]
    return {
        "submission": entry.name, "weights": checkpoint is not None, "inputs": [list(lr.shape[:2]) for lr in inputs],
        "runtime_ms": dataset_runtime(passes, per_image), "settings": ctx.settings, "environment": ctx.environment,
        "audit": audit.record,
    }


__all__ = ["RunConfig", "PreparedDataset", "prepare_datasets", "run_benchmark", "evaluate_submission",
           "bench_submission", "NotCredible"]
