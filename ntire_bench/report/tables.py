"""The leaderboard as text: the terminal table, Markdown and JSON (the HTML page: html.py; files: files.py).

Only ``leaderboard.csv`` is a bare table (exactly ``scoring.leaderboard.LEADERBOARD_COLUMNS`` plus one
``psnr_<dataset>`` column per dataset); the edition, baseline, device and harness version
travel in ``leaderboard.json``, ``leaderboard.md``, ``leaderboard.html`` and on the plot.
``leaderboard.json`` is strict JSON: a missing value is ``null`` and an infinite one the
string ``"Infinity"``, so ``JSON.parse`` reads it.
"""

from __future__ import annotations

import math
from typing import Any


from ntire_bench.scoring.leaderboard import PSNR_PREFIX, Leaderboard
from ntire_bench.report.format import BASELINE_SCORE, fmt, fmt_interval, fmt_rank, fmt_score, fmt_score_interval, has_intervals, missing, noise_legend, noise_marker, noise_spans, provenance, psnr_columns
from ntire_bench.report.format import row_note


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
                     + [fmt(row[c], 2) for c in psnr_cols] + [row_note(row)])
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
              + ["S runtime (rank)", "S FLOPs (rank)", "S params (rank)"]
              + [f"{track.replace('_', ' ').capitalize()} (rank sum)" for track in board.edition.rank_sums] + ["Note"])
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
                 + sub_scores + [fmt_rank(row[f"rank_{track}"]) for track in board.edition.rank_sums]
                 + [row_note(row)])
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


