"""A dataset's result from its timing passes: per-image runtime statistics, the headline and its interval,
the merged audit, and the quality measured in the first pass."""

from __future__ import annotations

import time
from typing import Sequence
from ntire_bench.runner.passes import PassOutcome, PassRecord
from ntire_bench.runner.audit import DatasetAudit
from ntire_bench.data.datasets import PreparedDataset
from ntire_bench.results.records import DatasetResult, ImageResult, METRIC_KEYS, RuntimeStats, SampleStats
from ntire_bench.timing.runtime import summarize_dataset, summarize_runs, summarize_samples
from ntire_bench.metrics.quality import mean_quality


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
