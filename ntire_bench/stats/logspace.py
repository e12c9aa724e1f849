"""Scores kept as logarithms: ``exp(2 * value / baseline)`` overflows a float once a submission is a few
hundred times the baseline, so scores travel as their logs and are exponentiated only to be shown."""

from __future__ import annotations

import math
from typing import Sequence


def exp_or_inf(ln_value: float) -> float:
    """``exp(ln_value)``, or ``inf`` where a float cannot hold it (NaN stays NaN)."""
    try:
        return math.exp(ln_value)
    except OverflowError:
        return math.inf


def log_sum_exp(logs: Sequence[float]) -> float:
    """``ln(sum(exp(l) for l in logs))`` without overflow (``math.fsum`` of the shifted terms)."""
    largest = max(logs)
    if math.isinf(largest):
        return largest
    return largest + math.log(math.fsum(math.exp(x - largest) for x in logs))


def weighted_log_sum_exp(logs: Sequence[float], weights: Sequence[float]) -> float:
    """``ln(sum(w * exp(l)))`` over the terms whose weight is above 0, without overflow."""
    return log_sum_exp([math.log(w) + x for x, w in zip(logs, weights) if w > 0])
