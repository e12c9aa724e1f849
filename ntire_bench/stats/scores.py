"""Intervals of scores, and ties within noise.

:func:`score_interval` and :func:`final_score_interval` carry runtime intervals through
``exp(2 * value / baseline)`` and the weighted sum without ever overflowing (logs kept
alongside, logspace.py); :func:`tie_groups` marks leaderboard rows whose score intervals overlap.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

from ntire_bench.stats.intervals import Interval, as_interval
from ntire_bench.stats.logspace import exp_or_inf, weighted_log_sum_exp


@dataclass(frozen=True)
class ScoreInterval(Interval):
    """Interval of a score ``exp(...)``, with the natural logs of its bounds and point.

    A bound that overflows a float is ``math.inf``; its log stays finite, so scores can
    still be compared (``tie_groups`` compares the logs).
    """

    score: float
    log_low: float
    log_high: float
    log_score: float


def _check_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def score_interval(value: float, value_interval: Interval | tuple[float, float] | None,
                   base: float, base_interval: Interval | tuple[float, float] | None) -> ScoreInterval:
    """Interval of ``exp(2 * value / base)`` from intervals of value and base (None = exact).

    For ``value >= 0`` and ``base > 0`` the score rises with the value and falls with the
    base, so it spans ``[exp(2·v_lo/b_hi), exp(2·v_hi/b_lo)]``; a base interval reaching 0
    makes the upper bound infinite. Bounds that overflow are ``math.inf`` while their logs
    (``2·v/b``) stay finite.

    The baseline's own score is exactly exp(2) (its runtime is divided by itself): give it
    no intervals. For ranking with :func:`tie_groups`, pass ``base_interval=None``: the
    baseline's noise moves every row's runtime score the same way, so it does not make two
    submissions harder to tell apart.
    """
    value = _check_number(value, "value")
    base = _check_number(base, "base")
    if value < 0:
        raise ValueError(f"value must be >= 0 (a runtime, FLOPs or params), got {value}")
    if base <= 0:
        raise ValueError(f"base must be the baseline's value, > 0, got {base}")
    values = as_interval(value_interval, value, "value_interval")
    bases = as_interval(base_interval, base, "base_interval")
    if values.low < 0 or bases.low < 0:
        raise ValueError("value_interval and base_interval must not reach below 0; clip runtime intervals at 0 ms")
    log_low = 2 * values.low / bases.high
    log_high = 2 * values.high / bases.low if bases.low > 0 else math.inf
    log_score = 2 * value / base
    return ScoreInterval(low=exp_or_inf(log_low), high=exp_or_inf(log_high), score=exp_or_inf(log_score),
                         log_low=log_low, log_high=log_high, log_score=log_score)


def final_score_interval(components: Mapping[str, ScoreInterval | float],
                         weights: Mapping[str, float]) -> ScoreInterval:
    """Weighted sum of component score intervals (``{"runtime": ..., "flops": ..., "params": ...}``).

    Each bound is the weighted sum of the component bounds: the score is increasing in
    every component. A plain float is an exact score (FLOPs, params). The logs are
    computed as log-sum-exp, so they stay finite when a bound overflows to inf.
    """
    if set(components) != set(weights):
        raise ValueError(f"final_score_interval: components ({', '.join(sorted(components))}) and weights "
                         f"({', '.join(sorted(weights))}) must name the same metrics")
    parts: list[tuple[float, ScoreInterval]] = []
    for key in sorted(weights):
        weight = weights[key]
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (0 <= weight < math.inf):
            raise ValueError(f"final_score_interval: weight {key!r} must be a finite number >= 0, got {weight!r}")
        component = components[key]
        if not isinstance(component, ScoreInterval):
            score = _check_number(component, f"final_score_interval: component {key!r}")
            if score <= 0:
                raise ValueError(f"final_score_interval: component {key!r} must be a score > 0, got {score}")
            component = ScoreInterval(score, score, score, math.log(score), math.log(score), math.log(score))
        if weight > 0:  # a zero weight must not turn an infinite bound into NaN
            parts.append((float(weight), component))
    if not parts:
        raise ValueError("final_score_interval: every weight is 0; at least one must be > 0")

    def weighted(attribute: str) -> float:
        return math.fsum(weight * getattr(component, attribute) for weight, component in parts)

    def weighted_log(attribute: str) -> float:
        return weighted_log_sum_exp([getattr(component, attribute) for _, component in parts],
                                    [weight for weight, _ in parts])

    return ScoreInterval(low=weighted("low"), high=weighted("high"), score=weighted("score"),
                         log_low=weighted_log("log_low"), log_high=weighted_log("log_high"),
                         log_score=weighted_log("log_score"))


class TieGroup(NamedTuple):
    """A row's tie group id (0, 1, ... in row order) and whether it overlaps another row."""

    group: int
    within_noise: bool


def tie_groups(intervals: Sequence[Interval]) -> list[TieGroup]:
    """Group leaderboard rows whose score intervals chain-overlap.

    ``intervals`` are in leaderboard order. Two rows share a group when a chain of
    overlapping (closed) intervals joins them; groups are the connected components of the
    overlap graph, numbered by first appearance. When rows are ordered by score and each
    score lies in its interval, every group is a run of consecutive rows. ``within_noise``
    is True when the row's interval overlaps at least one other row's (its group has more
    than one row).

    :class:`ScoreInterval` rows are compared on their log bounds, so scores that overflowed
    to inf still separate; all rows must then be ScoreIntervals.
    """
    rows = list(intervals)
    if not rows:
        return []
    use_logs = isinstance(rows[0], ScoreInterval)
    for index, row in enumerate(rows):
        if not isinstance(row, Interval):
            raise ValueError(f"tie_groups: row {index} is {type(row).__name__}, not an Interval")
        if isinstance(row, ScoreInterval) != use_logs:
            raise ValueError("tie_groups: mix of ScoreInterval and plain Interval rows; give every row the same kind")
    bounds = [(row.log_low, row.log_high) if use_logs else (row.low, row.high) for row in rows]

    component = [0] * len(rows)
    sizes: list[int] = []
    reach = -math.inf
    for index in sorted(range(len(rows)), key=lambda i: bounds[i][0]):
        low, high = bounds[index]
        if not sizes or low > reach:
            sizes.append(0)
            reach = high
        else:
            reach = max(reach, high)
        component[index] = len(sizes) - 1
        sizes[-1] += 1

    numbering: dict[int, int] = {}
    result = []
    for index in range(len(rows)):
        group = numbering.setdefault(component[index], len(numbering))
        result.append(TieGroup(group, sizes[component[index]] > 1))
    return result
