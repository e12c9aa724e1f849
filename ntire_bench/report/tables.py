"""Leaderboard writers: terminal table, CSV, Markdown and JSON (the HTML page and plot: report_html).

Only ``leaderboard.csv`` is a bare table (exactly ``scoring.LEADERBOARD_COLUMNS`` plus one
``psnr_<dataset>`` column per dataset); the edition, baseline, device and harness version
travel in ``leaderboard.json``, ``leaderboard.md``, ``leaderboard.html`` and on the plot.
``leaderboard.json`` is strict JSON: a missing value is ``null`` and an infinite one the
string ``"Infinity"``, so ``JSON.parse`` reads it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ntire_bench.scoring.leaderboard import PSNR_PREFIX, Leaderboard

BASELINE_SCORE = math.exp(2)


# ------------------------------------------------------------------------ formatting


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


def format_table(board: Leaderboard) -> str:
    """A compact plain-text leaderboard for the terminal."""
    psnr_cols = [PSNR_PREFIX + d for d in board.thresholds] or psnr_columns(board)[:3]
    intervals = has_intervals(board)
    spans = noise_spans(board)
    extra = ["score interval", "noise"] if intervals else []
    header = (["rank", "submission", "score"] + extra + ["ms", "params_M", "GFLOPs"]
              + [c[len(PSNR_PREFIX):] for c in psnr_cols] + ["note"])
    lines = []
    for _, row in board.table.iterrows():
        extra_cells = [fmt_score_interval(row), noise_marker(row, spans)] if intervals else []
        lines.append([fmt_rank(row["rank"]), row["submission"], fmt_score(row)] + extra_cells
                     + [fmt(row["runtime_ms"], 2), fmt(row["params_m"], 3), fmt(row["flops_g"], 2)]
                     + [fmt(row[c], 2) for c in psnr_cols] + [row["reason"]])
    widths = [max(len(str(r[i])) for r in [header] + lines) for i in range(len(header) - 1)]
    first_number = 3 + len(extra)
    right = {0, 2} | set(range(first_number, first_number + 3 + len(psnr_cols)))

    def render(cells: list[str]) -> str:
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return ("  ".join(parts) + "  " + cells[-1]).rstrip()

    title = (f"edition {board.edition.name} · baseline {board.baseline} · device {board.device} · "
             f"harness {board.harness_version or 'unknown'}")
    text = [title, render(header)] + [render(line) for line in lines]
    if spans:
        text.append("≈a–b: within measurement noise of the rows ranked a to b (score intervals overlap)")
    return "\n".join(text)


# ---------------------------------------------------------------------------- writers


def _json_value(value: Any) -> Any:
    if missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def to_json(board: Leaderboard) -> dict[str, Any]:
    """The leaderboard as ``{"metadata": ..., "columns": [...], "rows": [...]}``."""
    columns = list(board.table.columns)
    rows = [{c: _json_value(v) for c, v in zip(columns, values)} for values in board.table.itertuples(index=False)]
    return {"metadata": board.metadata(), "columns": columns, "rows": rows}


def to_markdown(board: Leaderboard) -> str:
    """The leaderboard as a Markdown document: provenance, the score legend and the table."""
    psnr_cols = psnr_columns(board)
    intervals = has_intervals(board)
    spans, runtime_spans = noise_spans(board), noise_spans(board, "runtime")
    header = (["Rank", "Submission", "Score"] + (["Score interval", "Within noise"] if intervals else [])
              + ["Runtime (ms)", "Params (M)", "FLOPs (G)"]
              + [f"PSNR {c[len(PSNR_PREFIX):]}" for c in psnr_cols]
              + ["S runtime (rank)", "S FLOPs (rank)", "S params (rank)", "Note"])
    lines = [f"# Efficient SR leaderboard — edition `{board.edition.name}`", ""]
    lines += [f"- **{key}:** {value}" for key, value in provenance(board)]
    lines += ["", f"Score = {board.edition.formula()}. Lower is better; the baseline scores "
                  f"{BASELINE_SCORE:.4f} on every score. Ties share a rank.", ""]
    if intervals:
        lines += [noise_legend(board), ""]
    left = {1, len(header) - 1}
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i not in left else "---"
                                                               for i in range(len(header))) + "|"]
    for _, row in board.table.iterrows():
        runtime = fmt(row["runtime_ms"], 2)
        if intervals and not missing(row["runtime_ms_low"]):
            runtime += f" {fmt_interval(row['runtime_ms_low'], row['runtime_ms_high'], 2)}"
        sub_scores = []
        for key in ("runtime", "flops", "params"):
            rank = fmt_rank(row["rank_" + key])
            if key == "runtime":
                marker = noise_marker(row, runtime_spans, "runtime")
                rank += f" {marker}" if marker else ""
            sub_scores.append(f"{fmt(row['score_' + key], 4)} ({rank})")
        cells = ([fmt_rank(row["rank"]), f"**{row['submission']}**" if row["submission"] == board.baseline else row["submission"],
                  fmt_score(row)]
                 + ([fmt_score_interval(row), noise_marker(row, spans)] if intervals else [])
                 + [runtime, fmt(row["params_m"], 3), fmt(row["flops_g"], 2)]
                 + [fmt(row[c], 2) for c in psnr_cols]
                 + sub_scores + [row["reason"]])
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(board: Leaderboard, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write leaderboard.{csv,md,json,html,png} into ``out_dir``; return their paths by format."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {fmt: out / f"leaderboard.{fmt}" for fmt in ("csv", "md", "json", "html", "png")}
    board.table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(to_markdown(board), encoding="utf-8")
    paths["json"].write_text(json.dumps(to_json(board), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    from ntire_bench.report.html import make_figure, svg_of, to_html

    fig = make_figure(board)
    fig.savefig(paths["png"], dpi=150)
    paths["html"].write_text(to_html(board, svg_of(fig)), encoding="utf-8")
    return paths
