"""How every leaderboard writer shows a value: numbers, scores and their intervals, ranks, ties within
noise, statuses and the provenance lines under a table.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ntire_bench.scoring.leaderboard import PSNR_PREFIX, Leaderboard


BASELINE_SCORE = math.exp(2)


def missing(value: Any) -> bool:
    """True for None, pandas NA and NaN: a value that was not measured."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, digits: int) -> str:
    """A number for a table cell: fixed decimals, scientific when astronomically large, — when missing."""
    if missing(value):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if isinstance(value, float) and abs(value) >= 1e6:
        return f"{value:.{min(digits, 3)}e}"  # exp() of a slow unranked entry can be astronomically large
    return f"{value:.{digits}f}"


def fmt_score(row: pd.Series, digits: int = 4) -> str:
    """The final score, from its log10 when it is beyond float range (scientific notation either way)."""
    score, log10 = row["score"], row["score_log10"]
    if isinstance(score, float) and math.isinf(score) and not missing(log10):
        exponent = math.floor(log10)
        return f"{10 ** (log10 - exponent):.{min(digits, 3)}f}e+{exponent}"
    return fmt(score, digits)


def has_intervals(board: Leaderboard) -> bool:
    """True when some row carries a runtime interval (published tables and old results carry none)."""
    return bool(board.table["runtime_ms_low"].notna().any())


def fmt_bound(value: Any, log10: Any, digits: int) -> str:
    """One interval bound; from its log10 when it is beyond float range, like ``fmt_score``."""
    if isinstance(value, float) and math.isinf(value) and not missing(log10) and math.isfinite(log10):
        exponent = math.floor(log10)
        return f"{10 ** (log10 - exponent):.{min(digits, 3)}f}e+{exponent}"
    return fmt(value, digits)


def fmt_interval(low: Any, high: Any, digits: int, log10_low: Any = None, log10_high: Any = None) -> str:
    """``[low, high]``, ``exact`` when it is a point (the baseline's score), or an empty string when there is none."""
    if missing(low) or missing(high):
        return ""
    if math.isfinite(high) and math.isclose(low, high, rel_tol=1e-12):
        return "exact"
    return f"[{fmt_bound(low, log10_low, digits)}, {fmt_bound(high, log10_high, digits)}]"


def fmt_score_interval(row: pd.Series, digits: int = 4) -> str:
    """The final score's displayed interval (baseline noise included), overflow-safe."""
    return fmt_interval(row["score_low"], row["score_high"], digits, row["score_log10_low"], row["score_log10_high"])


def noise_spans(board: Leaderboard, track: str = "") -> dict[int, tuple[int, int]]:
    """``{tie group: (best rank, worst rank)}`` for the groups of two or more rows on a track.

    ``track`` is ``""`` for the main ranking or ``"runtime"`` for the runtime sub-track.
    """
    suffix = f"_{track}" if track else ""
    table = board.table
    flagged = table[table["within_noise" + suffix].fillna(False).astype(bool)]
    spans: dict[int, tuple[int, int]] = {}
    for group, rows in flagged.groupby("tie_group" + suffix):
        ranks = rows["rank" + suffix].astype(int)
        spans[int(group)] = (int(ranks.min()), int(ranks.max()))
    return spans


def noise_marker(row: pd.Series, spans: dict[int, tuple[int, int]], track: str = "") -> str:
    """``≈2–3`` for a row within noise of the rows ranked 2 to 3 on the track, else an empty string."""
    suffix = f"_{track}" if track else ""
    flag, group = row["within_noise" + suffix], row["tie_group" + suffix]
    if missing(flag) or not flag or missing(group) or int(group) not in spans:
        return ""
    best, worst = spans[int(group)]
    return f"≈{best}" if best == worst else f"≈{best}–{worst}"


NOISE_LEGEND = ("Score intervals carry the {confidence:.0%} confidence intervals of the timed runtimes through the "
                "score formula, the baseline's own timing noise included; each runtime's interval is at "
                "{confidence:.0%}, so the combined coverage is lower (Bonferroni: at least 1 minus the sum of "
                "their miss rates, e.g. 90% for two). ≈a–b marks ranked rows "
                "whose scores cannot be told apart at this measurement noise (their intervals, with the "
                "baseline's runtime held fixed, overlap): ranks a to b are within noise. Ranks still follow the "
                "scores, as the organisers rank. Rows without an interval are never marked.")


def noise_legend(board: Leaderboard) -> str:
    """The one-paragraph explanation of intervals and the ≈ marker, for the Markdown and HTML legends."""
    confidence = (board.intervals or {}).get("confidence", 0.95)
    return NOISE_LEGEND.format(confidence=confidence)


def fmt_rank(value: Any) -> str:
    """A rank, or — for an unranked row."""
    return "—" if missing(value) else str(int(value))


def row_status(row: pd.Series) -> str:
    """A short label for a row: ranked, ineligible, reference, no weights, unfinished or failed."""
    # The reasons' leading words are written by records.SubmissionResult.unranked_reason.
    if row["eligible"]:
        return "ranked"
    reason = row["reason"]
    for prefix, label in (("reference", "reference"), ("no weights", "no weights"), ("failed", "failed"),
                          ("unfinished", "unfinished")):
        if reason.startswith(prefix):
            return label
    return "ineligible"


def psnr_columns(board: Leaderboard) -> list[str]:
    """The ``psnr_<dataset>`` columns of the table, thresholded datasets first."""
    return [PSNR_PREFIX + d for d in board.datasets]


def baseline_runtime_text(board: Leaderboard) -> str:
    """The baseline runtime every row was divided by, or a pointer to the per-row column."""
    value = board.baseline_metrics.get("runtime_ms")
    return f"{value:.2f} ms" if value is not None else "runtime per row (baseline_runtime_ms)"


def provenance(board: Leaderboard) -> list[tuple[str, str]]:
    """(label, value) lines saying how the board was produced."""
    meta = board.metadata()
    thresholds = ", ".join(f"{d} ≥ {v:.2f} dB" for d, v in board.thresholds.items()) or "none"
    lines = [
        ("Edition", f"{board.edition.name}" + (f" — {board.edition.description}" if board.edition.description else "")),
        ("Baseline", f"{board.baseline} (scores {BASELINE_SCORE:.4f}; {baseline_runtime_text(board)})"),
        ("Device", board.device + _reference_device_note(board)),
        ("Thresholds", thresholds + " (RGB PSNR)"),
        ("Runtime scored", board.runtime_rule),
        ("Harness version", meta["harness_version"] or "unknown"),
        ("Git commit", meta["git_commit"] or "unknown"),
        ("PyTorch", meta["torch"] or "unknown"),
        ("Scored with", f"{meta['scored_with']} at {meta['generated_at']}"),
    ]
    lines += [("Note", note) for note in board.notes]
    return lines


def _reference_device_note(board: Leaderboard) -> str:
    reference = board.edition.reference_device
    if not reference:
        return ""
    if reference == board.device:
        return " (the edition's reference device)"
    return f" (the edition's reference device is {reference}; runtimes are relative to this device's baseline)"


def row_note(row: pd.Series) -> str:
    """The note a row carries: why it is not ranked, or what to know about how its figures were obtained."""
    if row["reason"]:
        return str(row["reason"])
    flags = row.get("flags", "")
    return str(flags) if isinstance(flags, str) else ""
