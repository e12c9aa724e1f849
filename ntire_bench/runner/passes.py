"""Measuring: one timing pass of one submission over one dataset, and verifying timed outputs afresh.

A *pass* sends every LR image of a dataset to one fresh worker: the quality pass and warm-up
(``image``), then a timed block (``time``) whose repeats see noise the parent draws at that
moment. The parent validates the SR image the worker wrote before any metric, scores quality
(first pass), and checks every timed block (audit.py). ``PassJob`` and ``VerifyJob`` are plain
data and ``run_pass_job``/``run_verify_job`` need nothing but the local machine, so an
executor can run them here or on another node; ``assemble_dataset`` turns the passes into the
dataset's result.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ntire_bench.runner.audit import (RETRIES, VERIFY_TOLERANCE, DatasetAudit, NotCredible, TimedBlock, choose_probes, compare_recomputed, noise_buffer, perturbed_lr)
from ntire_bench.runner.context import Identity, RunContext, worker_factory
from ntire_bench.data.datasets import PreparedDataset, read_hr
from ntire_bench.data.images import read_image, write_image
from ntire_bench.metrics.quality import METRIC_KEYS, image_quality, mean_quality
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.results.records import DatasetResult, ImageResult, RuntimeStats, SampleStats
from ntire_bench.timing.runtime import summarize_dataset, summarize_runs, summarize_samples
from ntire_bench.util.text import one_line

VERIFIED_PER_PASS = 2


def read_sr(path: Path, lr_shape: tuple[int, ...], scale: int) -> np.ndarray:
    """The worker's SR output, validated before any metric: a 3 x sH x sW uint8 array."""
    try:
        sr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise WorkerFailure(f"the worker's output could not be read: {one_line(exc, with_type=False)}") from None
    finally:
        path.unlink(missing_ok=True)
    expected = (3, lr_shape[0] * scale, lr_shape[1] * scale)
    if not isinstance(sr, np.ndarray) or sr.dtype != np.uint8 or sr.shape != expected:
        raise WorkerFailure(f"the worker delivered a {getattr(sr, 'dtype', type(sr).__name__)} array of shape "
                            f"{getattr(sr, 'shape', '?')}, expected uint8 {expected}")
    return sr


@dataclass
class PassRecord:
    """What one pass over a dataset produced, kept for the headline and for verification."""

    samples: list[list[float]] = field(default_factory=list)  # per image
    warmups: list[int] = field(default_factory=list)
    stop_reasons: list[str] = field(default_factory=list)
    blocks: list[TimedBlock] = field(default_factory=list)
    noise: np.ndarray | None = None
    peak_memory_mb: float | None = None

    @property
    def headline(self) -> float:
        return summarize_dataset([summarize_samples(s)["median"] for s in self.samples])["mean"]


def _timed_block(worker: Any, audit: DatasetAudit, numel: int, noise: np.ndarray, probes: list[list[int]],
                 sr: np.ndarray | None, cap: int, rng: np.random.Generator) -> TimedBlock:
    """One image's timed repeats, re-timed when the parent's clock disagrees (see audit.RETRIES)."""
    for attempt in range(RETRIES + 1):
        offsets = rng.integers(0, len(noise) - numel, size=cap).tolist()
        reply, observed = worker.request("time", offsets=offsets, probes=probes)
        try:
            return audit.check_block(reply, observed, offsets, probes, sr, numel)
        except NotCredible as exc:
            if attempt == RETRIES or "replaced the clocks" in str(exc) or "does not match the SR" in str(exc):
                raise
            audit.record.retries += 1
    raise AssertionError("unreachable")


def run_pass(worker: Any, lr_images: Sequence[np.ndarray], scale: int, cap: int, audit: DatasetAudit,
             rng: np.random.Generator, bar: tqdm | None = None,
             on_output: Callable[[int, np.ndarray], None] | None = None,
             check_determinism: bool = False, image_label: Callable[[int], str] = str) -> PassRecord:
    """Send every image through ``worker``: quality pass, warm-up and a checked timed block each."""
    noise = noise_buffer(max(int(lr.size) for lr in lr_images), rng)
    noise_path = worker.tmp / "noise.npy"
    np.save(noise_path, noise, allow_pickle=False)
    worker.request("begin_dataset", noise=str(noise_path))
    record = PassRecord(noise=noise)
    for i, lr in enumerate(lr_images):
        lr_path, sr_path = worker.tmp / "lr.npy", worker.tmp / "sr.npy"
        np.save(lr_path, lr, allow_pickle=False)
        try:
            reply, _ = worker.request("image", input=str(lr_path), output=str(sr_path),
                                      check_determinism=check_determinism and i == 0)
            sr = read_sr(sr_path, lr.shape, scale)
            if on_output is not None:
                on_output(i, sr)
            block = _timed_block(worker, audit, int(lr.size), noise, choose_probes(sr, rng), sr, cap, rng)
        except NotCredible:
            raise
        except WorkerFailure as exc:
            raise WorkerFailure(f"{image_label(i)}: {exc}") from None
        finally:
            lr_path.unlink(missing_ok=True)
        audit.count_responses(block)
        record.samples.append(block.samples)
        record.warmups.append(int(reply["warmup"]))
        record.stop_reasons.append(block.stop_reason)
        record.blocks.append(block)
        if bar is not None:
            bar.update(1)
    reply, _ = worker.request("end_dataset")
    peak = reply["result"].get("peak_memory_mb") if isinstance(reply["result"], dict) else None
    record.peak_memory_mb = float(peak) if isinstance(peak, (int, float)) else None
    return record


# ---------------------------------------------------------------------------- jobs


@dataclass
class PassJob:
    """One timing pass of one submission over one dataset; plain data an executor can ship anywhere."""

    entry: PluginEntry
    identity: Identity
    dataset: PreparedDataset
    run_index: int
    seed: int
    count_complexity: bool = False
    compute_quality: bool = True
    check_determinism: bool = False


@dataclass
class PassOutcome:
    """What a pass job returns: the timed pass, quality (first pass), the load report and the audit so far."""

    job_dataset: str
    run_index: int
    record: PassRecord
    qualities: list[dict[str, float] | None]
    loaded: dict[str, Any]
    audit: DatasetAudit
    sandbox: Any
    node: dict[str, Any]


def node_facts(device: str) -> dict[str, Any]:
    """Which machine (and GPU) ran a job: recorded with every result."""
    facts: dict[str, Any] = {"host": platform.node()}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        facts.update(gpu=props.name, gpu_uuid=str(getattr(props, "uuid", "")) or None)
    return facts


def run_pass_job(job: PassJob, ctx: RunContext, progress: bool = False) -> PassOutcome:
    """Start a confined worker, load the submission, run one pass; quality is scored here, never in the worker."""
    info = job.entry.info
    assert info is not None
    pairs = job.dataset.pairs
    lr_images = [read_image(pair.lr_path) for pair in pairs]
    qualities: list[dict[str, float] | None] = [None] * len(pairs)
    scale = info.scale
    save_dir = (ctx.config.save_sr / job.entry.name / job.dataset.spec.name
                if ctx.config.save_sr is not None and job.run_index == 0 else None)

    def score(i: int, sr: np.ndarray) -> None:
        if job.compute_quality:
            hr = read_hr(pairs[i], lr_images[i], scale)
            qualities[i] = image_quality(torch.from_numpy(sr), torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1),
                                         border=scale)
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            write_image(save_dir / f"{pairs[i].name}x{scale}.png", np.ascontiguousarray(sr.transpose(1, 2, 0)))

    log_path = ctx.config.out_dir / "logs" / f"{job.entry.name}.log"
    start = worker_factory(job.entry, job.identity, ctx, log_path)
    worker, loaded = start(job.count_complexity)
    audit = DatasetAudit(info.data_range)
    label = f"{job.entry.name} · {job.dataset.spec.name}" + (f" · pass {job.run_index + 1}" if job.run_index else "")
    try:
        with tqdm(total=len(pairs), desc=label, unit="img", disable=not progress, leave=False) as bar:
            record = run_pass(worker, lr_images, scale, ctx.config.timing_settings(ctx.device).repeats, audit,
                              np.random.default_rng(job.seed), bar,
                              on_output=score if job.compute_quality or save_dir is not None else None,
                              check_determinism=job.check_determinism,
                              image_label=lambda i: f"{job.dataset.spec.name}/{pairs[i].name}")
    finally:
        worker.close()
    return PassOutcome(job.dataset.spec.name, job.run_index, record, qualities, loaded, audit,
                       worker.sandbox_info, node_facts(ctx.device))


# ------------------------------------------------------------------------ assembly


def image_runtime(passes: list[PassRecord], index: int) -> SampleStats:
    """One image's runtime statistics over every pass (samples pooled), with the median's interval."""
    from ntire_bench.stats.intervals import median_interval

    samples = [s for p in passes for s in p.samples[index]]
    summary = summarize_samples(samples)
    interval = median_interval(samples) if len(samples) > 1 else None
    reasons = sorted({p.stop_reasons[index] for p in passes})
    return SampleStats(
        median=summary["median"], mean=summary["mean"], min=summary["min"], max=summary["max"], iqr=summary["iqr"],
        cv=summary["cv"], n=summary["n"], ci_low=interval.low if interval else None,
        ci_high=interval.high if interval else None, warmup=passes[0].warmups[index], stop_reason="/".join(reasons))


def dataset_runtime(passes: list[PassRecord], per_image: list[SampleStats]) -> RuntimeStats:
    """The dataset headline (mean of per-image medians), its spread, the per-pass headlines and an interval."""
    from ntire_bench.stats.intervals import runtime_headline_interval

    summary = summarize_dataset([s.median for s in per_image])
    runs = summarize_runs([p.headline for p in passes])
    interval = runtime_headline_interval([[x for p in passes for x in p.samples[i]] for i in range(len(per_image))],
                                         [p.headline for p in passes])
    return RuntimeStats(mean=summary["mean"], median=summary["median"], min=summary["min"], max=summary["max"],
                        std=summary["std"], runs=runs["runs"], run_cv=runs["run_cv"], unstable=runs["unstable"],
                        ci_low=interval.low if interval else None, ci_high=interval.high if interval else None)


def merge_audits(audits: Sequence[DatasetAudit]) -> DatasetAudit:
    """One dataset's audit over all its passes (each pass job audits its own blocks)."""
    merged = DatasetAudit(audits[0].data_range)
    for audit in audits:
        record = audit.record
        merged.record.requests += record.requests
        merged.record.claimed_ms += record.claimed_ms
        merged.record.observed_ms += record.observed_ms
        merged.record.retries += record.retries
        merged.record.probes_checked += record.probes_checked
        if record.min_ratio is not None:
            merged.record.min_ratio = (record.min_ratio if merged.record.min_ratio is None
                                       else min(merged.record.min_ratio, record.min_ratio))
        merged.repeats += audit.repeats
        merged.unresponsive += audit.unresponsive
    return merged


def assemble_dataset(dataset: PreparedDataset, outcomes: Sequence[PassOutcome], cache_key: str | None
                     ) -> DatasetResult:
    """The dataset's result from its passes (quality from the first); raises NotCredible from the audit."""
    outcomes = sorted(outcomes, key=lambda o: o.run_index)
    passes = [o.record for o in outcomes]
    per_image = [image_runtime(passes, i) for i in range(len(dataset.pairs))]
    qualities = outcomes[0].qualities
    measured = [q for q in qualities if q is not None]
    means = mean_quality(measured) if measured else dict.fromkeys(METRIC_KEYS)
    peaks = [p.peak_memory_mb for p in passes if p.peak_memory_mb is not None]
    rows = []
    for pair, quality, runtime in zip(dataset.pairs, qualities, per_image):
        q = quality or {}
        rows.append(ImageResult(name=pair.name, psnr=q.get("psnr"), psnr_y=q.get("psnr_y"), ssim=q.get("ssim"),
                                ssim_y=q.get("ssim_y"), runtime_ms=runtime))
    return DatasetResult(
        num_images=len(dataset.pairs), threshold=dataset.spec.threshold, runtime_ms=dataset_runtime(passes, per_image),
        peak_memory_mb=max(peaks) if peaks else None, measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        cache_key=cache_key, timing_audit=merge_audits([o.audit for o in outcomes]).finish(), images=rows, **means)


# ---------------------------------------------------------------------- verification


@dataclass
class VerifyCandidate:
    """A timed repeat to recompute in a fresh worker: its input and what the timed worker reported."""

    dataset: str
    lr: np.ndarray
    offset: int
    noise: np.ndarray
    probes: list[list[int]]
    outputs: list[float]


@dataclass
class VerifyJob:
    """Recompute some timed repeats of one submission in a fresh worker (plain data, like PassJob)."""

    entry: PluginEntry
    identity: Identity
    candidates: list[VerifyCandidate]


def pick_candidates(dataset: PreparedDataset, outcomes: Sequence[PassOutcome], rng: np.random.Generator,
                    per_pass: int = VERIFIED_PER_PASS) -> list[VerifyCandidate]:
    """A few (image, repeat) pairs per pass, at random."""
    chosen = []
    for outcome in outcomes:
        record = outcome.record
        for i in rng.choice(len(record.blocks), size=min(per_pass, len(record.blocks)), replace=False):
            block = record.blocks[int(i)]
            k = int(rng.integers(0, len(block.samples)))
            chosen.append(VerifyCandidate(dataset.spec.name, read_image(dataset.pairs[int(i)].lr_path),
                                          block.offsets[k], record.noise, block.probes, block.outputs[k]))
    return chosen


def verify_repeats(worker: Any, candidates: list[VerifyCandidate], scale: int, data_range: float) -> float:
    """Recompute each candidate's input as an ordinary image in ``worker`` (fresh, never saw the timed inputs);
    return the largest difference (fraction of white), raising NotCredible beyond ``VERIFY_TOLERANCE``."""
    worst = 0.0
    for dataset in dict.fromkeys(c.dataset for c in candidates):
        todo = [c for c in candidates if c.dataset == dataset]
        noise_path = worker.tmp / "noise.npy"
        np.save(noise_path, np.zeros(2 * max(c.lr.size for c in todo) + 1, dtype=np.int8), allow_pickle=False)
        worker.request("begin_dataset", noise=str(noise_path))
        for candidate in todo:
            lr = perturbed_lr(candidate.lr, candidate.noise, candidate.offset)
            lr_path, sr_path = worker.tmp / "lr.npy", worker.tmp / "sr.npy"
            np.save(lr_path, lr, allow_pickle=False)
            worker.request("image", input=str(lr_path), output=str(sr_path), check_determinism=False)
            read_sr(sr_path, lr.shape, scale)
            reply, _ = worker.request("time", offsets=[0], probes=candidate.probes)
            difference = compare_recomputed(candidate.outputs, reply["reference"], data_range)
            worst = max(worst, difference)
            if not difference <= VERIFY_TOLERANCE:
                raise NotCredible(
                    f"on {dataset}, a timed repeat's output differs by {difference * 255:.3g} grey levels from the "
                    f"same input's output recomputed in a fresh process (tolerance {VERIFY_TOLERANCE * 255:.2g}): "
                    "the timed forward was not the model's (memoized, cached or substituted)")
        worker.request("end_dataset")
    return worst


def run_verify_job(job: VerifyJob, ctx: RunContext) -> float:
    """Run a verification job in a fresh confined worker; the largest difference found (fraction of white)."""
    info = job.entry.info
    assert info is not None
    start = worker_factory(job.entry, job.identity, ctx, ctx.config.out_dir / "logs" / f"{job.entry.name}.log")
    worker, _ = start(False)
    try:
        return verify_repeats(worker, job.candidates, info.scale, info.data_range)
    finally:
        worker.close()
