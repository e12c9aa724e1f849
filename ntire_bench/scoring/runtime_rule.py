"""Which runtime a leaderboard scores for each result and for the baseline, and its interval.

The edition names the runtime datasets (the organisers average their headlines); when the
baseline lacks them the board falls back to an image-weighted mean over shared datasets, and
a table of published figures scores its own runtime column (docs/scoring.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ntire_bench.scoring.editions import Edition
from ntire_bench.results.records import SubmissionResult
from ntire_bench.stats.intervals import Interval


class ScoringError(Exception):
    """Results or an edition cannot be scored; the message is one line saying what to do."""


# The confidence of the runtime intervals the harness records (measure.dataset_runtime uses
# the stats default) and so of every interval derived from them.
INTERVAL_CONFIDENCE = 0.95
# An interval may miss its own point by this much (relative) from float rounding in the writer.
_INTERVAL_SLACK = 1e-9


@dataclass(frozen=True)
class RuntimeRule:
    """Which runtime is scored: ``given`` (a table's own figure), ``datasets`` (the unweighted mean of
    the named datasets, the organisers' Ave.) or ``shared`` (image-weighted mean over shared datasets)."""

    kind: str
    datasets: tuple[str, ...] = ()
    fallback_from: tuple[str, ...] = ()  # the edition's datasets, when the baseline lacks them

    def describe(self) -> str:
        if self.kind == "given":
            return "runtime_ms as given in the metrics table"
        if self.kind == "datasets":
            names = " and ".join(self.datasets)
            return f"runtime_ms.mean on {names}" if len(self.datasets) == 1 else f"mean of runtime_ms.mean on {names}"
        rule = "image-count-weighted mean of runtime_ms.mean over the datasets the submission and the baseline both have"
        if self.fallback_from:
            rule += f" (the baseline was not measured on {', '.join(self.fallback_from)}, the edition's runtime datasets)"
        return rule


def dataset_runtimes(result: SubmissionResult) -> dict[str, tuple[float, int]]:
    """``{dataset: (runtime_ms.mean, num_images)}`` for every dataset with a measured runtime."""
    return {name: (d.runtime_ms.mean, max(d.num_images, 1)) for name, d in result.datasets.items()
            if d.runtime_ms is not None and math.isfinite(d.runtime_ms.mean)}


def _rule_datasets(own: Mapping[str, tuple[float, int]], base: Mapping[str, tuple[float, int]], rule: RuntimeRule
                   ) -> tuple[list[str] | None, list[str] | None, dict[str, int] | None]:
    """Which datasets ``rule`` averages for a result and for the baseline, and their weights (None: unweighted).

    ``own`` and ``base`` are ``{dataset: (runtime, num_images)}`` (see ``dataset_runtimes``).
    """
    if rule.kind == "datasets":
        wanted = list(rule.datasets)
        return (wanted if all(d in own for d in wanted) else None,
                wanted if all(d in base for d in wanted) else None, None)
    common = [d for d in own if d in base]
    if not common:
        return None, None, None
    return common, common, {d: own[d][1] for d in common}  # the baseline weighted by the submission's images


def _rule_mean(values: Mapping[str, float], datasets: list[str], weights: Mapping[str, int] | None) -> float:
    """The (weighted) mean of ``values`` over ``datasets``; the same arithmetic for a runtime and its bounds."""
    if weights is None:
        return sum(values[d] for d in datasets) / len(datasets)
    total = sum(weights[d] for d in datasets)
    return sum(values[d] * weights[d] for d in datasets) / total


def scored_runtimes(result: SubmissionResult, baseline: SubmissionResult,
                    rule: RuntimeRule) -> tuple[float | None, float | None]:
    """The runtime scored for ``result`` and the baseline runtime it is divided by (ms)."""
    if rule.kind == "given":
        return result.scored_runtime_ms, baseline.scored_runtime_ms
    own, base = dataset_runtimes(result), dataset_runtimes(baseline)
    own_sets, base_sets, weights = _rule_datasets(own, base, rule)
    means = []
    for runtimes, datasets in ((own, own_sets), (base, base_sets)):
        means.append(None if datasets is None else _rule_mean({d: v[0] for d, v in runtimes.items()}, datasets, weights))
    return means[0], means[1]


def _dataset_intervals(result: SubmissionResult, names: list[str]) -> dict[str, tuple[float, float]]:
    """``{dataset: (ci_low, ci_high)}`` for the datasets ``names`` whose measured runtime records its interval.

    Raises ScoringError, naming the file and dataset, for an interval that is half given, not
    finite, below 0 or does not hold its own headline (only datasets that are scored are read).
    """
    out = {}
    for name in names:
        dataset = result.datasets[name]
        stats = dataset.runtime_ms
        if stats is None or not math.isfinite(stats.mean) or (stats.ci_low is None and stats.ci_high is None):
            continue
        if len(stats.runs) < 2 and dataset.images and any(
                image.runtime_ms is not None and image.runtime_ms.n < 2 for image in dataset.images):
            continue  # one sample per image and one pass: nothing measured the noise, the interval is a point
        low, high = stats.ci_low, stats.ci_high
        slack = _INTERVAL_SLACK * abs(stats.mean)
        if (low is None or high is None or not (math.isfinite(low) and math.isfinite(high)) or low < 0
                or not low - slack <= stats.mean <= high + slack):
            raise ScoringError(f"{result.label}: datasets.{name}.runtime_ms interval [{low}, {high}] does not hold "
                               f"its mean {stats.mean} ms (it needs 0 <= ci_low <= mean <= ci_high); "
                               "re-run the submission or remove ci_low/ci_high")
        out[name] = (min(low, stats.mean), max(high, stats.mean))
    return out


def scored_runtime_intervals(result: SubmissionResult, baseline: SubmissionResult,
                             rule: RuntimeRule) -> tuple[Interval | None, Interval | None]:
    """The intervals of the two runtimes ``scored_runtimes`` gives (ms); None where one is not recorded.

    A mean of several datasets' headlines gets the same mean of their bounds. That is exact
    when their errors move together (one machine, one process: clock and thermal state are
    shared) and conservative when they are independent; it holds the mean whenever every
    dataset's interval holds its own headline, so its coverage is at least 1 - sum of the
    datasets' miss rates, whatever their dependence (docs/scoring.md).
    """
    if rule.kind == "given":
        return None, None
    own, base = dataset_runtimes(result), dataset_runtimes(baseline)
    own_sets, base_sets, weights = _rule_datasets(own, base, rule)
    intervals: list[Interval | None] = []
    for record, runtimes, datasets in ((result, own, own_sets), (baseline, base, base_sets)):
        if datasets is None:
            intervals.append(None)
            continue
        bounds = _dataset_intervals(record, datasets)
        if not all(d in bounds for d in datasets):
            intervals.append(None)
            continue
        point = _rule_mean({d: v[0] for d, v in runtimes.items()}, datasets, weights)
        low = _rule_mean({d: bounds[d][0] for d in datasets}, datasets, weights)
        high = _rule_mean({d: bounds[d][1] for d in datasets}, datasets, weights)
        intervals.append(Interval(min(low, point), max(high, point)))
    return intervals[0], intervals[1]


def runtime_rule(edition: Edition, baseline: SubmissionResult) -> RuntimeRule:
    """The edition's runtime datasets when the baseline measured them all, else the shared-datasets rule."""
    if baseline.scored_runtime_ms is not None:
        return RuntimeRule("given")
    if edition.runtime_datasets and all(d in dataset_runtimes(baseline) for d in edition.runtime_datasets):
        return RuntimeRule("datasets", edition.runtime_datasets)
    return RuntimeRule("shared", fallback_from=edition.runtime_datasets)


def interval_method(rule: RuntimeRule) -> dict[str, Any]:
    """How the board's intervals were made, for the metadata (docs/scoring.md has the full story)."""
    runtime = ("the mean of the datasets' interval bounds" if rule.kind == "datasets"
               else "the image-weighted mean of the shared datasets' interval bounds")
    return {
        "confidence": INTERVAL_CONFIDENCE,
        "runtime": f"runtime_ms.ci_low/ci_high of each dataset (per-image medians and, with --runs K, the spread "
                   f"between passes); the scored runtime's interval is {runtime}",
        "scores": "score bounds are exp(2 * runtime bound / baseline bound), lowest over highest and highest over "
                  "lowest, summed with the weights; FLOPs and params are exact",
        "displayed": "score_low/score_high include the baseline's own runtime interval",
        "ties": "rows share a tie group when their score_rel intervals (baseline runtime held at its measured "
                "value) chain-overlap; within_noise marks groups of two or more ranked rows; ranks follow the "
                "scores alone",
    }
