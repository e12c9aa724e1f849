"""Ranking: editions (each year's rules), scores against a baseline, intervals and ties, the CI gate.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "editions": ["Edition", "EditionError", "load_edition"],
    "leaderboard": ["Leaderboard", "score_results"],
    "runtime_rule": ["ScoringError"],
    "gate": ["GateError", "check_gate"],
})
