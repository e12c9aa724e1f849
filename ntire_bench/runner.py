"""Evaluating submissions on datasets: the parent side of every run.

The parent owns the datasets, the HR images, the metrics and the results files. Each
submission runs in its own worker (a child process unless isolation is turned off) that
only ever sees LR pixels. Results are written atomically after every dataset, and a
re-run with the same inputs and settings skips what is already measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .data import DatasetSpec, ImagePair, dataset_fingerprint, read_hr, resolve_pairs, validate_pairs
from .environment import collect_environment, gpu_telemetry, resolve_device, telemetry_warnings
from .images import read_image
from .metrics import METRIC_KEYS, image_quality, mean_quality
from .plugins import PluginEntry, model_zoo_dirs, resolve_checkpoint, sha256_file
from .results import SCHEMA, atomic_write_json, load_existing, results_path, set_aside
from .runtime import TimingSettings, default_cpu_threads, summarize_dataset, summarize_runs, summarize_samples
from .worker import InProcessWorker, IsolatedWorker, WorkerConfig, WorkerFailure, WorkerLimits


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
    timeout_s: float = 3600.0
    memory_limit_bytes: int | None = field(default_factory=default_memory_limit)
    isolate: bool = True
    force: bool = False
    cudnn_benchmark: bool = False
    complexity_size: tuple[int, int] = (256, 256)
    cache_dir: Path | None = None
    progress: bool = True
    log: Callable[[str], None] = print

    def threads_for(self, device: str) -> int | None:
        """Host threads for a worker: as asked, else all cores but one on CPU, torch's choice on CUDA."""
        if self.threads is not None:
            return self.threads
        return None if device.startswith("cuda") else default_cpu_threads()

    def measurement_settings(self, device: str) -> dict[str, Any]:
        timing = TimingSettings.for_device(device, self.warmup, self.repeats)
        return {
            "device": device,
            "warmup": timing.warmup,
            "repeats": timing.repeats,
            "runs": self.runs,
            "threads": self.threads_for(device),
            "cudnn_benchmark": self.cudnn_benchmark,
            "complexity_size": list(self.complexity_size),
            "isolated": self.isolate,
        }


@dataclass
class PreparedDataset:
    """A dataset resolved to its pairs, with the fingerprint of its files."""

    spec: DatasetSpec
    pairs: list[ImagePair]
    fingerprint: str


def prepare_datasets(specs: Sequence[DatasetSpec], cache_dir: Path | None = None, progress: bool = True) -> list[PreparedDataset]:
    """Resolve and check every dataset up front, so a bad path or image fails before any model runs."""
    prepared = []
    for spec in specs:
        pairs = resolve_pairs(spec, cache_dir=cache_dir, progress=progress)
        validate_pairs(pairs, spec.scale, progress=progress)
        prepared.append(PreparedDataset(spec, pairs, dataset_fingerprint(pairs)))
    return prepared


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _worker_config(entry: PluginEntry, checkpoint: Path | None, settings: dict[str, Any], config: RunConfig,
                   **extra: Any) -> WorkerConfig:
    """What a worker needs to load ``entry`` and time it with these measurement settings."""
    return WorkerConfig(
        source=entry.source, name=entry.name, checkpoint=str(checkpoint) if checkpoint else None,
        device=settings["device"], warmup=settings["warmup"], repeats=settings["repeats"], threads=settings["threads"],
        cudnn_benchmark=config.cudnn_benchmark, complexity_size=config.complexity_size, **extra,
    )


def _limits(config: RunConfig, settings: dict[str, Any], scrub_paths: Sequence[str] = ()) -> WorkerLimits:
    return WorkerLimits(timeout_s=config.timeout_s, memory_bytes=config.memory_limit_bytes,
                        threads=settings["threads"], scrub_paths=list(scrub_paths))


def _worker_factory(worker_config: WorkerConfig, limits: WorkerLimits, isolate: bool,
                    log_path: Path | None = None) -> Callable[..., IsolatedWorker | InProcessWorker]:
    """A function starting a worker for this submission: a child process, or in-process when not isolating."""
    def start(count_complexity: bool = True) -> IsolatedWorker | InProcessWorker:
        settings = replace(worker_config, count_complexity=count_complexity)
        return IsolatedWorker(settings, limits, log_path) if isolate else InProcessWorker(settings)

    return start


def run_benchmark(entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset], config: RunConfig) -> list[dict[str, Any]]:
    """Evaluate every submission on every dataset; return the results records (also on disk)."""
    device = resolve_device(config.device)
    environment = collect_environment(device, config.threads_for(device))
    config.out_dir.mkdir(parents=True, exist_ok=True)
    hidden = sorted({str(p.hr_path.parent) for d in datasets for p in d.pairs})
    records = []
    for entry in entries:
        records.append(_evaluate(entry, datasets, config, device, environment, hidden))
    return records


def _failed_plugin_record(entry: PluginEntry, environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "submission": entry.name, "team": None, "status": "failed", "error": entry.error,
        "reference": False, "params": None, "flops": None, "activations": None, "num_conv": None,
        "plugin": {"source": entry.source, "sha256": entry.source_sha256}, "checkpoint": None,
        "datasets": {}, "environment": environment, "warnings": [],
    }


def _evaluate(
    entry: PluginEntry,
    datasets: Sequence[PreparedDataset],
    config: RunConfig,
    device: str,
    environment: dict[str, Any],
    hidden: list[str],
) -> dict[str, Any]:
    path = results_path(config.out_dir, entry.name)
    if not entry.ok:
        record = _failed_plugin_record(entry, environment)
        atomic_write_json(path, record)
        config.log(f"{entry.name}: failed: {entry.error}")
        return record
    submission = entry.submission
    assert submission is not None
    zoo = model_zoo_dirs(config.model_zoo)
    checkpoint = resolve_checkpoint(submission, zoo)
    checkpoint_sha = sha256_file(checkpoint) if checkpoint else None
    settings = config.measurement_settings(device)
    run_key = _digest({
        "plugin": entry.source_sha256, "checkpoint": checkpoint_sha, "harness": __version__,
        "device": environment["device_name"], "settings": settings, "name": submission.name,
    })
    dataset_keys = {d.spec.name: _digest({"run": run_key, "files": d.fingerprint, "scale": d.spec.scale}) for d in datasets}

    existing = load_existing(path)
    if existing is not None and existing.get("run_key") != run_key:
        # Measured with other code, weights or settings: keep the file, but not as a cache.
        set_aside(path, f"{path.name} was measured with other code, weights, device or settings", label="stale")
        existing = None
    previous = (existing or {}).get("datasets", {})
    # Datasets this run does not touch stay in the file; those it does are reused if unchanged.
    kept = {name: result for name, result in previous.items() if name not in dataset_keys}
    done = {} if config.force else {
        name: result for name, result in previous.items()
        if name in dataset_keys and result.get("cache_key") == dataset_keys[name]
    }
    todo = [d for d in datasets if d.spec.name not in done]
    if existing is not None and not todo and existing.get("status") != "failed":
        config.log(f"{entry.name}: up to date in {path} (use --force to re-measure)")
        return existing

    record: dict[str, Any] = {
        "schema": SCHEMA,
        "submission": submission.name,
        "team": submission.team,
        "status": "ok",
        "error": None,
        "reference": submission.reference,
        "data_range": submission.data_range,
        "params": None, "flops": None, "activations": None, "num_conv": None,
        "complexity": None,
        "checkpoint": {"file": submission.checkpoint, "path": str(checkpoint) if checkpoint else None, "sha256": checkpoint_sha}
        if submission.checkpoint else None,
        "plugin": {"source": entry.source, "sha256": entry.source_sha256},
        "datasets": {**kept, **done},
        "settings": settings,
        "environment": dict(environment),
        "warnings": [],
        "run_key": run_key,
    }
    missing_weights = submission.requires_weights and checkpoint is None
    if missing_weights:
        record["status"] = "no_weights"
        record["error"] = (
            f"checkpoint {submission.checkpoint} not found in the model zoo "
            f"({', '.join(map(str, zoo)) or 'none given'}); pass --model-zoo DIR for a PSNR rank"
        )

    worker_config = _worker_config(entry, checkpoint, settings, config, checkpoint_sha256=checkpoint_sha)
    limits = _limits(config, settings, scrub_paths=hidden)
    log_path = config.out_dir / "logs" / f"{submission.name}.log"
    gpu_uuid = (environment.get("gpu") or {}).get("uuid")
    telemetry_start = gpu_telemetry(gpu_uuid) if device.startswith("cuda") else None

    start_worker = _worker_factory(worker_config, limits, config.isolate, log_path)
    worker = None
    try:
        worker = start_worker()
        loaded = worker.load()
        complexity = loaded["complexity"]
        record.update({k: complexity[k] for k in ("params", "flops", "activations", "num_conv")})
        record["complexity"] = {k: complexity.get(k) for k in ("input_size", "unsupported_ops", "peak_memory_mb")}
        record["environment"]["threads"] = loaded["num_threads"]
        compute_quality = not missing_weights
        for index, dataset in enumerate(todo):
            result = _run_dataset(
                worker, start_worker, dataset, config, submission.scale, device,
                compute_quality=compute_quality, check_determinism=index == 0,
                label=f"{submission.name} · {dataset.spec.name}",
            )
            result["cache_key"] = dataset_keys[dataset.spec.name]
            record["datasets"][dataset.spec.name] = result
            atomic_write_json(path, record)
    except WorkerFailure as exc:
        record["status"] = "failed"
        record["error"] = str(exc)
        config.log(f"{submission.name}: failed: {exc}")
    finally:
        if worker is not None:
            worker.close()
    if telemetry_start is not None:
        telemetry_end = gpu_telemetry(gpu_uuid)
        record["environment"]["gpu_telemetry"] = {"start": telemetry_start, "end": telemetry_end}
        record["warnings"].extend(telemetry_warnings(telemetry_start, telemetry_end))
    for name, result in record["datasets"].items():
        if result["runtime_ms"].get("unstable"):
            record["warnings"].append(
                f"{name}: runtime varies by {result['runtime_ms']['run_cv']:.1%} between passes (>2%); "
                "results are unstable, quiet the machine and re-run"
            )
    atomic_write_json(path, record)
    return record


def _timing_passes(
    worker,
    start_worker: Callable[..., Any],
    lr_images: Sequence[np.ndarray],
    runs: int,
    isolate: bool,
    bar: tqdm,
    on_output: Callable[[int, torch.Tensor], None] | None = None,
    check_determinism: bool = False,
    image_label: Callable[[int], str] = str,
) -> tuple[list[list[float]], list[float], float | None]:
    """Time ``runs`` passes over the LR images: per-image samples, per-pass headlines, peak memory.

    The first pass runs on ``worker`` and hands each SR output to ``on_output``; each extra
    pass gets a fresh process when isolating, as pyperf does for its workers.
    """
    samples: list[list[float]] = [[] for _ in lr_images]
    headlines: list[float] = []
    peak = None
    for run_index in range(runs):
        first_pass = run_index == 0
        pass_worker = worker if first_pass or not isolate else start_worker(count_complexity=False)
        try:
            if pass_worker is not worker:
                pass_worker.load()
            pass_worker.begin_dataset()
            medians = []
            for i, lr in enumerate(lr_images):
                try:
                    sr, image_samples = pass_worker.super_resolve(
                        lr, check_determinism=check_determinism and first_pass and i == 0,
                        want_output=first_pass and on_output is not None,
                    )
                except WorkerFailure as exc:
                    raise WorkerFailure(f"{image_label(i)}: {exc}") from None
                if sr is not None and on_output is not None:
                    on_output(i, sr)
                samples[i].extend(image_samples)
                medians.append(summarize_samples(image_samples)["median"])
                bar.update(1)
            headlines.append(summarize_dataset(medians)["mean"])
            pass_peak = pass_worker.end_dataset().get("peak_memory_mb")
            peak = pass_peak if peak is None or pass_peak is None else max(peak, pass_peak)
        finally:
            if pass_worker is not worker:
                pass_worker.close()
    return samples, headlines, peak


def _runtime_summary(samples: list[list[float]], headlines: list[float]) -> dict[str, Any]:
    runtime: dict[str, Any] = summarize_dataset([summarize_samples(s)["median"] for s in samples])
    runtime.update(summarize_runs(headlines))
    return runtime


def _run_dataset(
    worker,
    start_worker: Callable[..., Any],
    dataset: PreparedDataset,
    config: RunConfig,
    scale: int,
    device: str,
    compute_quality: bool,
    check_determinism: bool,
    label: str,
) -> dict[str, Any]:
    pairs = dataset.pairs
    lr_images = [read_image(pair.lr_path) for pair in pairs]
    qualities: list[dict[str, float] | None] = [None] * len(pairs)

    def score_output(i: int, sr: torch.Tensor) -> None:
        hr = read_hr(pairs[i], lr_images[i], scale)
        hr_tensor = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1).to(device)
        qualities[i] = image_quality(sr.to(device), hr_tensor, border=scale)

    with tqdm(total=len(pairs) * config.runs, desc=label, unit="img", disable=not config.progress, leave=False) as bar:
        samples, headlines, peak = _timing_passes(
            worker, start_worker, lr_images, config.runs, config.isolate, bar,
            on_output=score_output if compute_quality else None, check_determinism=check_determinism,
            image_label=lambda i: f"{dataset.spec.name}/{pairs[i].name}",
        )
    images = []
    for pair, quality, image_samples in zip(pairs, qualities, samples):
        row: dict[str, Any] = {"name": pair.name}
        row.update({k: (quality[k] if quality else None) for k in METRIC_KEYS})
        row["runtime_ms"] = summarize_samples(image_samples)
        images.append(row)
    # Without weights there is no quality to average (None per key), only runtime.
    measured = [q for q in qualities if q is not None]
    result: dict[str, Any] = mean_quality(measured) if measured else dict.fromkeys(METRIC_KEYS)
    result.update({
        "threshold": dataset.spec.threshold,
        "num_images": len(images),
        "runtime_ms": _runtime_summary(samples, headlines),
        "peak_memory_mb": peak,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "images": images,
    })
    return result


def bench_submission(
    entry: PluginEntry, inputs: Sequence[np.ndarray], config: RunConfig
) -> dict[str, Any]:
    """Runtime only: time a submission on LR arrays, ``config.runs`` passes in fresh workers.

    Needs no dataset and no weights (a missing checkpoint leaves random initial weights,
    which time the same).
    """
    if not entry.ok:
        raise WorkerFailure(entry.error or f"{entry.name}: broken plugin")
    submission = entry.submission
    assert submission is not None
    device = resolve_device(config.device)
    settings = config.measurement_settings(device)
    checkpoint = resolve_checkpoint(submission, model_zoo_dirs(config.model_zoo))
    worker_config = _worker_config(entry, checkpoint, settings, config)
    limits = _limits(config, settings)
    start_worker = _worker_factory(worker_config, limits, config.isolate)
    worker = start_worker(count_complexity=False)
    try:
        worker.load()
        with tqdm(total=len(inputs) * config.runs, desc=f"bench {submission.name}", unit="img",
                  disable=not config.progress, leave=False) as bar:
            samples, headlines, _ = _timing_passes(worker, start_worker, inputs, config.runs, config.isolate, bar,
                                                   image_label=lambda i: f"input {i}")
    finally:
        worker.close()
    runtime = _runtime_summary(samples, headlines)
    return {
        "submission": submission.name,
        "weights": checkpoint is not None,
        "inputs": [list(lr.shape[:2]) for lr in inputs],
        "runtime_ms": runtime,
        "settings": settings,
        "environment": collect_environment(device, settings["threads"]),
    }
