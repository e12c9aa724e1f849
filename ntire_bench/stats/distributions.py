"""Distributions the timing statistics need: normal and Student t quantiles, and the exact binomial
ranks of a median's confidence interval. Pure Python (math, fractions), tested against tables.
"""

from __future__ import annotations

import functools
import math
import numbers
import statistics
from fractions import Fraction
from typing import NamedTuple

# Above this many samples the binomial tail is summed in floating point (log-gamma terms)
# instead of exact integers; the two agree to ~1e-12 in coverage (tested).
EXACT_RANKS_MAX_N = 1000

_STANDARD_NORMAL = statistics.NormalDist()


def standard_normal() -> statistics.NormalDist:
    """The standard normal distribution (mean 0, sd 1)."""
    return _STANDARD_NORMAL


# --------------------------------------------------------------------------- quantiles


def _check_probability(p: float, name: str) -> None:
    if not (isinstance(p, numbers.Real) and 0 < p < 1):
        raise ValueError(f"{name} must be a probability strictly between 0 and 1, got {p!r}")


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b) (modified Lentz); converges fast for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    # f = 1 / (1 + d1 / (1 + d2 / (1 + ...))), evaluated as b0 + a1/(b1 + a2/(b2 + ...))
    # with b0 = 0, a1 = 1 and a_{m+1} = d_m, every b_j = 1.
    f = tiny
    c = f
    d = 0.0
    for j in range(1, 10_000):
        m = j - 1
        if m == 0:
            numerator = 1.0
        elif m % 2:
            k = (m - 1) // 2
            numerator = -(a + k) * (a + b + k) * x / ((a + 2 * k) * (a + 2 * k + 1))
        else:
            k = m // 2
            numerator = k * (b - k) * x / ((a + 2 * k - 1) * (a + 2 * k))
        d = 1.0 + numerator * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + numerator / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = c * d
        f *= delta
        if abs(delta - 1.0) < 1e-16:
            return f
    raise ArithmeticError(f"incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}")


def _regularized_incomplete_beta(a: float, b: float, x: float, one_minus_x: float) -> float:
    """I_x(a, b); ``one_minus_x`` is passed separately so 1 - x keeps its precision."""
    if x <= 0:
        return 0.0
    if one_minus_x <= 0:
        return 1.0
    log_front = a * math.log(x) + b * math.log(one_minus_x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _incomplete_beta_fraction(b, a, one_minus_x) / b


def _student_t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0."""
    t_squared = t * t
    if math.isinf(t_squared):
        return 0.0
    denominator = df + t_squared
    return 0.5 * _regularized_incomplete_beta(df / 2, 0.5, df / denominator, t_squared / denominator)


def student_t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for ``0 < p < 1`` and ``df`` > 0 (``math.inf`` gives the normal).

    Solved by bisection on the upper tail, to full double precision.
    """
    _check_probability(p, "p")
    _check_df(df)
    if math.isinf(df):
        return _STANDARD_NORMAL.inv_cdf(p)
    if p == 0.5:
        return 0.0
    tail = min(p, 1.0 - p)
    low, high = 0.0, 1.0
    while _student_t_upper_tail(high, df) > tail:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if _student_t_upper_tail(middle, df) > tail:
            low = middle
        else:
            high = middle
    value = (low + high) / 2
    return value if p > 0.5 else -value


def _check_df(df: float) -> None:
    if not (isinstance(df, numbers.Real) and df > 0):
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")


# --------------------------------------------------------------------------- median ranks


class MedianRanks(NamedTuple):
    """1-based ranks of the median interval ``[x_(lower), x_(upper)]`` and its exact coverage."""

    lower: int
    upper: int
    coverage: float
    reaches_confidence: bool


def check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, numbers.Real) and 0 < confidence < 1):
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")


def half_rank_exact(n: int, alpha: Fraction) -> tuple[int, float]:
    """Largest k >= 1 with 2·P(B <= k-1) <= alpha for B ~ Binomial(n, 1/2), or 0; and 1 - 2·P(B <= k-1).

    Exact: compares integers 2·sum(C(n, i))·den <= num·2^n.
    """
    total = 1 << n
    allowed = alpha.numerator * total
    term = 1  # C(n, i)
    cumulative = 0
    accepted = 0
    rank = 0
    for i in range(n // 2 + 1):
        cumulative += term
        if 2 * cumulative * alpha.denominator > allowed:
            break
        rank, accepted = i + 1, cumulative
        term = term * (n - i) // (i + 1)
    return rank, float(1 - Fraction(2 * accepted, total))


def half_rank_float(n: int, alpha: float) -> tuple[int, float]:
    """As ``half_rank_exact``, summing log-gamma terms in floating point (for large n)."""
    log_total = n * math.log(2.0)
    log_n_factorial = math.lgamma(n + 1)
    # 40 standard deviations (20·sqrt(n)) below n/2 the binomial mass is < exp(-800) by
    # Hoeffding's bound: less than any positive double, so the sum can start there.
    start = max(0, math.floor(n / 2 - 20 * math.sqrt(n)))
    rank, cumulative, accepted = start, 0.0, 0.0
    for i in range(start, n // 2 + 1):
        cumulative += math.exp(log_n_factorial - math.lgamma(i + 1) - math.lgamma(n - i + 1) - log_total)
        if 2 * cumulative > alpha:
            break
        rank, accepted = i + 1, cumulative
    return rank, 1.0 - 2.0 * accepted


@functools.lru_cache(maxsize=4096)
def median_ranks(n: int, confidence: float = 0.95) -> MedianRanks:
    """Ranks of the distribution-free confidence interval for the median of ``n`` samples.

    The interval ``[x_(k), x_(n+1-k)]`` of the sorted samples holds the true median with
    probability ``1 - 2·P(B <= k-1)``, B ~ Binomial(n, 1/2), whatever the (continuous)
    distribution. ``k`` is the largest rank whose coverage is still >= ``confidence``, so
    the interval is the narrowest symmetric-rank one that reaches it.

    When even the full range ``[x_(1), x_(n)]`` covers less (coverage ``1 - 2^(1-n)``;
    at 95% that is n < 6), the ranks are ``(1, n)``, the coverage is the one achieved and
    ``reaches_confidence`` is False. One sample gives ``(1, 1)`` with coverage 0.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"the number of samples must be a positive integer, got {n!r}")
    check_confidence(confidence)
    if n <= EXACT_RANKS_MAX_N:
        # repr gives the shortest decimal that round-trips: 0.95 is taken as exactly 19/20.
        rank, coverage = half_rank_exact(n, 1 - Fraction(repr(float(confidence))))
    else:
        rank, coverage = half_rank_float(n, 1.0 - confidence)
    if rank == 0:
        return MedianRanks(1, n, 1.0 - 2.0 ** (1 - n), False)
    return MedianRanks(rank, n + 1 - rank, coverage, True)
