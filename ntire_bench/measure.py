"""Measuring one submission on one dataset: timing passes, quality, the timing audit, and verification.

A *pass* sends every LR image of a dataset to one worker: the quality pass and warm-up
(``image``), then a timed block (``time``) whose repeats see noise the parent draws at that
moment. The parent validates the SR image the worker wrote before any metric, and checks
every timed block (audit.py). ``verify_repeats`` then recomputes a few timed repeats in a
fresh worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from .audit import (RETRIES, DatasetAudit, NotCredible, TimedBlock, choose_probes, compare_recomputed, noise_buffer,
                    perturbed_lr, VERIFY_TOLERANCE)
from .protocol import WorkerFailure
from .records import ImageResult, RuntimeStats, SampleStats, TimingAudit
from .runtime import summarize_dataset, summarize_runs, summarize_samples

VERIFIED_PER_PASS = 2


def read_sr(path: Path, lr_shape: tuple[int, ...], scale: int) -> np.ndarray:
    """The worker's SR output, validated before any metric: a 3 x sH x sW uint8 array."""
    try:
        sr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise WorkerFailure(f"the worker's output could not be read: {' '.join(str(exc).split())}") from None
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

    samples: list[list[float]]  # per image
    warmups: list[int]
    stop_reasons: list[str]
    blocks: list[TimedBlock]
    noise: np.ndarray
    peak_memory_mb: float | None = None

    @property
    def headline(self) -> float:
        return summarize_dataset([summarize_samples(s)["median"] for s in self.samples])["mean"]


@dataclass
class DatasetTiming:
    """Every pass of one dataset, plus the audit that checked them."""

    passes: list[PassRecord] = field(default_factory=list)
    audit: TimingAudit | None = None


def _timed_block(worker, audit: DatasetAudit, numel: int, noise: np.ndarray, probes: list[list[int]],
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


def run_pass(worker, lr_images: Sequence[np.ndarray], scale: int, cap: int, audit: DatasetAudit,
             rng: np.random.Generator, bar: tqdm, on_output: Callable[[int, np.ndarray], None] | None = None,
             check_determinism: bool = False, image_label: Callable[[int], str] = str) -> PassRecord:
    """Send every image through ``worker``: quality pass, warm-up and a checked timed block each."""
    numel_max = max(int(lr.size) for lr in lr_images)
    noise = noise_buffer(numel_max, rng)
    noise_path = worker.tmp / "noise.npy"
    np.save(noise_path, noise, allow_pickle=False)
    worker.request("begin_dataset", noise=str(noise_path))
    record = PassRecord([], [], [], [], noise)
    for i, lr in enumerate(lr_images):
        lr_path, sr_path = worker.tmp / "lr.npy", worker.tmp / "sr.npy"
        np.save(lr_path, lr, allow_pickle=False)
        try:
            reply, _ = worker.request("image", input=str(lr_path), output=str(sr_path),
                                      check_determinism=check_determinism and i == 0)
            sr = read_sr(sr_path, lr.shape, scale)
            if on_output is not None:
                on_output(i, sr)
            probes = choose_probes(sr, rng)
            block = _timed_block(worker, audit, int(lr.size), noise, probes, sr, cap, rng)
        except WorkerFailure as exc:
            raise type(exc)(f"{image_label(i)}: {exc}") if not isinstance(exc, NotCredible) else exc from None
        finally:
            lr_path.unlink(missing_ok=True)
        audit.count_responses(block)
        record.samples.append(block.samples)
        record.warmups.append(int(reply["warmup"]))
        record.stop_reasons.append(block.stop_reason)
        record.blocks.append(block)
        bar.update(1)
    reply, _ = worker.request("end_dataset")
    peak = reply["result"].get("peak_memory_mb") if isinstance(reply["result"], dict) else None
    record.peak_memory_mb = float(peak) if isinstance(peak, (int, float)) else None
    return record


def image_runtime(passes: list[PassRecord], index: int) -> SampleStats:
    """One image's runtime statistics over every pass (samples pooled), with the median's interval."""
    from .stats import median_interval

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
    from .stats import runtime_headline_interval

    summary = summarize_dataset([s.median for s in per_image])
    runs = summarize_runs([p.headline for p in passes])
    interval = runtime_headline_interval([[x for p in passes for x in p.samples[i]] for i in range(len(per_image))],
                                         [p.headline for p in passes])
    return RuntimeStats(mean=summary["mean"], median=summary["median"], min=summary["min"], max=summary["max"],
                        std=summary["std"], runs=runs["runs"], run_cv=runs["run_cv"], unstable=runs["unstable"],
                        ci_low=interval.low if interval else None, ci_high=interval.high if interval else None)


@dataclass
class VerifyCandidate:
    """A timed repeat to recompute in a fresh worker: its input and what the timed worker reported."""

    dataset: str
    lr: np.ndarray
    offset: int
    noise: np.ndarray
    probes: list[list[int]]
    outputs: list[float]


def pick_candidates(dataset: str, lr_images: Sequence[np.ndarray], passes: list[PassRecord],
                    rng: np.random.Generator, per_pass: int = VERIFIED_PER_PASS) -> list[VerifyCandidate]:
    """A few (image, repeat) pairs per pass, at random."""
    chosen = []
    for record in passes:
        images = rng.choice(len(record.blocks), size=min(per_pass, len(record.blocks)), replace=False)
        for i in images:
            block = record.blocks[int(i)]
            k = int(rng.integers(0, len(block.samples)))
            chosen.append(VerifyCandidate(dataset, lr_images[int(i)], block.offsets[k], record.noise, block.probes,
                                          block.outputs[k]))
    return chosen


def verify_repeats(worker, candidates: list[VerifyCandidate], scale: int, data_range: float) -> float:
    """Recompute each candidate's input as an ordinary image in ``worker`` (fresh, never saw the timed inputs);
    return the largest difference (fraction of white), raising NotCredible beyond ``VERIFY_TOLERANCE``."""
    worst = 0.0
    for dataset in dict.fromkeys(c.dataset for c in candidates):
        todo = [c for c in candidates if c.dataset == dataset]
        noise = np.zeros(2 * max(c.lr.size for c in todo) + 1, dtype=np.int8)
        noise_path = worker.tmp / "noise.npy"
        np.save(noise_path, noise, allow_pickle=False)
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


def quality_rows(names: list[str], qualities: list[dict[str, float] | None], per_image: list[SampleStats]
                 ) -> list[ImageResult]:
    """Per-image result rows."""
    rows = []
    for name, quality, runtime in zip(names, qualities, per_image):
        q = quality or {}
        rows.append(ImageResult(name=name, psnr=q.get("psnr"), psnr_y=q.get("psnr_y"), ssim=q.get("ssim"),
                                ssim_y=q.get("ssim_y"), runtime_ms=runtime))
    return rows


def now_stamp() -> str:
    """A local timestamp for ``measured_at``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
