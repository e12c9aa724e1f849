"""Ranking: editions (each year's rules), scores against a baseline, intervals and ties, the CI gate."""

from ntire_bench.scoring.editions import Edition, EditionError, load_edition
from ntire_bench.scoring.leaderboard import Leaderboard, score_results
from ntire_bench.scoring.runtime_rule import ScoringError
from ntire_bench.scoring.gate import GateError, check_gate

__all__ = ["check_gate", "Edition", "EditionError", "GateError", "Leaderboard", "load_edition", "score_results",
    "ScoringError"]
