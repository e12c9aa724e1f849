"""The CI gate: does every evaluated submission meet the PSNR thresholds?

Exit codes of `ntire-bench gate`: 0 pass, 1 a threshold missed or a run failed, 2 nothing to
check (no results, or no threshold applies at all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from ntire_bench.scoring.editions import Edition, format_db, load_edition, resolve_thresholds, threshold_misses
from ntire_bench.results.records import FAILED, SubmissionResult


class GateError(ValueError):
    """The gate has nothing to decide on; the message says what to pass or run."""


@dataclass(frozen=True)
class GateFailure:
    """One reason the gate fails: a missed threshold, or a submission whose run failed."""

    submission: str
    reason: str
    dataset: str | None = None
    psnr: float | None = None
    threshold: float | None = None

    def line(self) -> str:
        """One line for the terminal: submission, dataset, its PSNR and the threshold."""
        if self.dataset is None:
            return f"FAIL {self.submission}: {self.reason}"
        psnr = "not evaluated" if self.psnr is None else f"PSNR {format_db(self.psnr, self.threshold)} dB"
        return f"FAIL {self.submission} {self.dataset}: {psnr}, threshold {format_db(self.threshold)} dB"


@dataclass(frozen=True)
class GateReport:
    """What the gate checked and what failed; ``passed`` is the verdict."""

    thresholds: dict[str, float]
    checked: list[str]
    skipped: list[tuple[str, str]]
    failures: list[GateFailure]

    @property
    def passed(self) -> bool:
        return not self.failures


def check_gate(results: list[SubmissionResult], edition: Edition | str | os.PathLike | None = None,
               thresholds: Mapping[str, float] | None = None) -> GateReport:
    """Check every evaluated submission (status ok, not reference) against the thresholds in force.

    A failed run fails the gate with its reason; no_weights, unfinished and reference results
    are skipped. Raise GateError when there is nothing to check: no results, no submission
    that finished, or no threshold at all (a gate that checks nothing must not pass).
    """
    edition = load_edition(edition)
    if not results:
        raise GateError("no results to gate; run `ntire-bench run` first")
    in_force = resolve_thresholds(results, edition, thresholds)
    checked, skipped, failures = [], [], []
    for result in results:
        if result.status == FAILED:
            failures.append(GateFailure(result.submission, result.unranked_reason() or "failed"))
            continue
        reason = result.unranked_reason()
        if reason is not None:
            skipped.append((result.submission, reason))
            continue
        checked.append(result.submission)
        failures.extend(GateFailure(m.submission, m.reason, m.dataset, m.psnr, m.threshold)
                        for m in threshold_misses(result, in_force))
    if not checked and not failures:
        raise GateError("nothing to gate: no submission finished with status ok; "
                        "check the run's output (" + "; ".join(f"{n}: {r}" for n, r in skipped) + ")")
    if not in_force and not failures:
        raise GateError("no PSNR threshold applies to these results, so the gate would check nothing; "
                        "pass --edition NAME or --threshold DATASET=DB, or set `threshold:` in datasets.yaml")
    return GateReport(in_force, checked, skipped, failures)
