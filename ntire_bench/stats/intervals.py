"""Intervals of runtimes: of a median, and of a dataset's headline; pure Python.

What is here, in the order the harness uses it:

- :func:`median_interval` is the distribution-free confidence interval of a median, from
  order statistics (ranks and exact coverage from :func:`distributions.median_ranks`).
- :func:`headline_interval` (within one timing pass), :func:`pass_interval` (between K
  passes) and :func:`combined_headline_interval` give the interval of the dataset headline,
  the mean of the per-image medians.

Score intervals and ties are in scores.py.

The quantiles and binomial ranks behind them are in distributions.py; the adaptive sampler
and warm-up detector that consume median intervals are in adaptive.py.
"""

from __future__ import annotations

import math
import numbers
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ntire_bench.stats.distributions import check_confidence, median_ranks, standard_normal, student_t_quantile


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]``; bounds may be infinite, never NaN."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if math.isnan(self.low) or math.isnan(self.high) or self.low > self.high:
            raise ValueError(f"an interval needs low <= high, got [{self.low}, {self.high}]")

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def overlaps(self, other: "Interval") -> bool:
        """True when the two closed intervals share at least one point (touching counts)."""
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MedianInterval(Interval):
    """Order-statistic interval ``[x_(lower_rank), x_(upper_rank)]`` around a sample median.

    ``coverage`` is the exact distribution-free probability that the interval holds the
    true median (any continuous distribution); it is >= ``confidence`` unless there were
    too few samples, in which case the interval is the whole sample range and
    ``reaches_confidence`` is False.
    """

    median: float
    n: int
    lower_rank: int
    upper_rank: int
    coverage: float
    confidence: float

    @property
    def reaches_confidence(self) -> bool:
        return self.coverage >= self.confidence

    @property
    def relative_half_width(self) -> float:
        """The larger one-sided distance from the median to a bound, over the median.

        The interval is asymmetric for skewed timings; taking the larger side means
        "within ±target" holds on both sides.
        """
        half = max(self.median - self.low, self.high - self.median)
        if self.median == 0:
            return 0.0 if half == 0 else math.inf
        return half / abs(self.median)


@dataclass(frozen=True)
class HeadlineInterval(Interval):
    """Interval of a dataset headline runtime (mean of per-image medians), in ms.

    ``method`` says where it came from: ``"images"`` (within-pass sampling noise of the
    per-image medians), ``"passes"`` (t-interval over K pass headlines) or ``"combined"``.
    """

    headline: float
    confidence: float
    method: str
    reaches_confidence: bool


def as_interval(value: Interval | tuple[float, float] | None, point: float, name: str) -> Interval:
    """``None`` means exactly ``point``; a pair becomes an Interval; the point must lie inside."""
    if value is None:
        return Interval(point, point)
    interval = value if isinstance(value, Interval) else Interval(float(value[0]), float(value[1]))
    if not interval.contains(point):
        raise ValueError(f"{name} [{interval.low}, {interval.high}] does not contain its value {point}")
    return interval


# --------------------------------------------------------------------------- median interval


def _check_samples(samples: Sequence[float], what: str) -> list[float]:
    values = list(samples)
    if not values:
        raise ValueError(f"{what}: no samples; pass at least one")
    for index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{what}: sample {index} is {value!r}; samples must be finite numbers")
    return [float(v) for v in values]


def median_interval_of_sorted(ordered: Sequence[float], confidence: float) -> MedianInterval:
    n = len(ordered)
    ranks = median_ranks(n, confidence)
    return MedianInterval(
        low=ordered[ranks.lower - 1], high=ordered[ranks.upper - 1], median=statistics.median(ordered), n=n,
        lower_rank=ranks.lower, upper_rank=ranks.upper, coverage=ranks.coverage, confidence=float(confidence),
    )


def median_interval(samples: Sequence[float], confidence: float = 0.95) -> MedianInterval:
    """Distribution-free confidence interval for the median of ``samples``.

    Order statistics picked by :func:`median_ranks`: exact coverage >= ``confidence`` for
    any continuous distribution (ties only make it more conservative). With too few
    samples (n < 6 at 95%) it is the whole sample range with ``reaches_confidence`` False.
    """
    values = _check_samples(samples, "median_interval")
    check_confidence(confidence)
    return median_interval_of_sorted(sorted(values), confidence)


# --------------------------------------------------------------------------- headline interval


def headline_interval(per_image_samples: Sequence[Sequence[float]], confidence: float = 0.95) -> HeadlineInterval:
    """The headline (mean of per-image medians) and its interval from within-pass sampling noise.

    Method (normal approximation, deterministic): each image's median interval is an exact
    order-statistic interval with known coverage c_i, so its width over ``2·z((1+c_i)/2)``
    estimates the standard error of that median. The images are timed independently, so
    the headline's standard error is ``sqrt(sum se_i^2) / m`` and the interval is
    ``headline ± z((1+confidence)/2)·se``, clipped at 0 ms.

    ``reaches_confidence`` is False when an image has too few samples for its own interval
    to reach the confidence (n < 6 at 95%). An image with one sample has no spread to
    measure and adds nothing to the standard error.

    This is only the noise of sampling within one process; drift between processes shows
    only in :func:`pass_interval`. With strongly skewed noise and few samples per image the
    sample median itself is biased, and averaging many images shrinks the interval but not
    the bias. Simulated coverage at 95% (400 trials per case, 6-50 samples per image,
    lognormal CV 2% or exponential-tailed noise): 95-99% over 5 or 14 images, 91-96% for a
    single image, 97-99% over 100 images with lognormal noise but 81-92% with
    exponential-tailed noise.
    """
    check_confidence(confidence)
    if not per_image_samples:
        raise ValueError("headline_interval: no images; pass one list of timing samples per image")
    medians: list[float] = []
    variance_sum = 0.0
    reached = True
    for index, samples in enumerate(per_image_samples):
        interval = median_interval(_check_samples(samples, f"headline_interval: image {index}"), confidence)
        medians.append(interval.median)
        reached = reached and interval.reaches_confidence
        if interval.coverage > 0:
            z_image = standard_normal().inv_cdf(0.5 + interval.coverage / 2)
            variance_sum += (interval.width / (2 * z_image)) ** 2
    headline = statistics.fmean(medians)
    half_width = standard_normal().inv_cdf(0.5 + confidence / 2) * math.sqrt(variance_sum) / len(medians)
    return HeadlineInterval(low=max(0.0, headline - half_width), high=headline + half_width, headline=headline,
                            confidence=float(confidence), method="images", reaches_confidence=reached)


def pass_interval(pass_headlines: Sequence[float], confidence: float = 0.95) -> HeadlineInterval:
    """Student-t interval of the mean of K >= 2 pass headlines (each from a fresh process).

    ``mean ± t((1+confidence)/2, K-1)·s/sqrt(K)``, clipped at 0 ms. It sees everything that
    differs between processes (clock and placement drift) as well as the sampling noise,
    but with few passes it is wide: t is 12.71 at K = 2 and 4.30 at K = 3 (95%).
    """
    check_confidence(confidence)
    values = _check_samples(pass_headlines, "pass_interval")
    if len(values) < 2:
        raise ValueError(f"pass_interval: needs at least two pass headlines (--runs >= 2), got {len(values)}")
    mean = statistics.fmean(values)
    t_value = student_t_quantile(0.5 + confidence / 2, len(values) - 1)
    half_width = t_value * statistics.stdev(values) / math.sqrt(len(values))
    return HeadlineInterval(low=max(0.0, mean - half_width), high=mean + half_width, headline=mean,
                            confidence=float(confidence), method="passes", reaches_confidence=True)


def combined_headline_interval(within: HeadlineInterval, between: HeadlineInterval | None = None) -> HeadlineInterval:
    """The headline interval the leaderboard shows.

    Rule: centred on ``within.headline`` (the pooled mean of per-image medians, the figure
    shown), each side is the wider of the within-pass side and the between-pass
    half-width. Not in quadrature: each pass headline already carries its own sampling
    noise, so the between-pass spread includes the within-pass noise and adding the two
    would count it twice. The within-pass interval stays as a floor because with few passes
    the t-interval can come out narrow by chance. Without passes, ``within`` is returned.
    """
    if between is None:
        return within
    if not math.isclose(within.confidence, between.confidence):
        raise ValueError(f"combined_headline_interval: confidences differ ({within.confidence} within, "
                         f"{between.confidence} between passes); compute both at the same confidence")
    between_half = between.high - between.headline  # the upper side is never clipped at 0
    headline = within.headline
    low = max(0.0, min(within.low, headline - between_half))
    high = max(within.high, headline + between_half)
    reached = within.reaches_confidence and between.reaches_confidence
    return HeadlineInterval(low=low, high=high, headline=headline, confidence=within.confidence,
                            method="combined", reaches_confidence=reached)


def runtime_headline_interval(per_image_samples: Sequence[Sequence[float]],
                              pass_headlines: Sequence[float] | None = None,
                              confidence: float = 0.95) -> HeadlineInterval:
    """:func:`headline_interval`, combined with :func:`pass_interval` when two or more passes are given."""
    within = headline_interval(per_image_samples, confidence)
    if pass_headlines is None or len(pass_headlines) < 2:
        return within
    return combined_headline_interval(within, pass_interval(pass_headlines, confidence))


# --------------------------------------------------------------------------- score intervals


# --------------------------------------------------------------------------- tie groups


