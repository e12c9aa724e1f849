"""Statistics of timed samples and scores: distribution-free intervals, score intervals and ties.

Standard library only.
"""

from ntire_bench.stats.intervals import HeadlineInterval, Interval, MedianInterval, median_interval, runtime_headline_interval
from ntire_bench.stats.scores import ScoreInterval, TieGroup, final_score_interval, score_interval, tie_groups
from ntire_bench.stats.distributions import median_ranks, student_t_quantile

__all__ = ["final_score_interval", "HeadlineInterval", "Interval", "median_interval", "median_ranks",
    "MedianInterval", "runtime_headline_interval", "score_interval", "ScoreInterval", "student_t_quantile",
    "tie_groups", "TieGroup"]
