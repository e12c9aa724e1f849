"""The PSNR-vs-runtime plot of a leaderboard: one point per measured submission, the Pareto front."""

from __future__ import annotations

import io
import math

import pandas as pd

from ntire_bench.scoring.leaderboard import PSNR_PREFIX, Leaderboard
from ntire_bench.report.format import row_status


def plot_dataset(board: Leaderboard) -> str | None:
    """The dataset whose PSNR the plot shows: the runtime dataset, else the first thresholded one, else the fullest."""
    table = board.table
    filled = {d: int(table[PSNR_PREFIX + d].notna().sum()) for d in board.datasets}
    for candidate in [*board.edition.runtime_datasets, *board.thresholds]:
        if candidate and filled.get(candidate):
            return candidate
    best = max(filled, key=lambda d: filled[d], default=None)
    return best if best and filled[best] else None


def pareto_front(runtime: list[float], psnr: list[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (faster and at least as good), fastest first."""
    order = sorted(range(len(runtime)), key=lambda i: (runtime[i], -psnr[i]))
    front, best = [], -math.inf
    for i in order:
        if psnr[i] > best:
            front.append(i)
            best = psnr[i]
    return front


def make_figure(board: Leaderboard):
    """The PSNR-vs-runtime scatter plot with the Pareto front and threshold line (a matplotlib Figure)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    dataset = plot_dataset(board)
    threshold = board.thresholds.get(dataset) if dataset else None
    fig = Figure(figsize=(10, 5.2), dpi=110)
    ax = fig.add_subplot()
    ax.set_xlabel("runtime per image (ms, as scored)")
    ax.set_ylabel(f"PSNR on {dataset} (dB, RGB)" if dataset else "PSNR (dB)")
    ax.set_title(f"PSNR vs runtime — edition {board.edition.name}, baseline {board.baseline}", fontsize=11, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)

    points = pd.DataFrame()
    if dataset:
        column = PSNR_PREFIX + dataset
        points = board.table[["submission", "eligible", "reason", "runtime_ms", "runtime_ms_low", "runtime_ms_high",
                              column]].rename(columns={column: "psnr"})
        points = points[points["runtime_ms"].notna() & points["psnr"].notna() & points["psnr"].map(math.isfinite)]
    if points.empty:
        ax.text(0.5, 0.5, "no submission has both a runtime and a PSNR", ha="center", va="center",
                transform=ax.transAxes, color="#6b7280")
    else:
        _draw_points(ax, board, points.reset_index(drop=True), threshold)
    if threshold is not None:
        ax.axhline(threshold, color="#dc2626", linestyle=":", linewidth=1.4, zorder=1,
                   label=f"threshold {threshold:.2f} dB")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False)
    fig.text(0.01, 0.015, f"device {board.device} · harness {board.harness_version or 'unknown'} · "
             f"commit {board.git_commit or 'unknown'}", fontsize=7.5, color="#6b7280")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


_STYLES = {
    "ranked": dict(color="#2563eb", marker="o", s=48, label="ranked"),
    "ineligible": dict(facecolor="white", edgecolor="#d97706", marker="o", s=48, linewidths=1.6,
                       label="not ranked: threshold / incomplete"),
    "reference": dict(color="#9ca3af", marker="s", s=40, label="reference (never ranked)"),
    "no weights": dict(facecolor="white", edgecolor="#9ca3af", marker="D", s=36, linewidths=1.4,
                       label="no weights"),
    "unfinished": dict(facecolor="white", edgecolor="#6b7280", marker="v", s=40, linewidths=1.4,
                       label="unfinished run"),
}


def _draw_points(ax, board: Leaderboard, points: pd.DataFrame, threshold: float | None) -> None:
    """Scatter, Pareto front and labels; references far below the field are pinned to the bottom edge."""
    points["status"] = points.apply(row_status, axis=1)
    # Keep the y-range on the contenders: a bicubic reference or a randomly initialised
    # (no weights) model several dB down would flatten everyone else.
    field = points[~points["status"].isin(["reference", "no weights"])]
    anchor = field["psnr"].tolist() + ([threshold] if threshold is not None else [])
    low, high = (min(anchor), max(anchor)) if anchor else (points["psnr"].min(), points["psnr"].max())
    pad = max(0.05, 0.12 * (high - low))
    low, high = low - pad, high + pad
    below = points["psnr"] < low
    shown = points.assign(psnr=points["psnr"].clip(lower=low + 0.25 * pad))

    bars = shown[shown["runtime_ms_low"].notna() & shown["runtime_ms_high"].notna()]
    if not bars.empty:  # the runtime's interval, drawn under the markers
        ax.errorbar(bars["runtime_ms"], bars["psnr"],
                    xerr=[bars["runtime_ms"] - bars["runtime_ms_low"], bars["runtime_ms_high"] - bars["runtime_ms"]],
                    fmt="none", ecolor="#94a3b8", elinewidth=1.2, capsize=3, zorder=2.5,
                    label="runtime 95% interval")
    for status, style in _STYLES.items():
        subset = shown[(shown["status"] == status)]
        if not subset.empty:
            ax.scatter(subset["runtime_ms"], subset["psnr"], zorder=3, **style)
    base = shown[shown["submission"] == board.baseline]
    if not base.empty:
        ax.scatter(base["runtime_ms"], base["psnr"], marker="*", s=240, color="#111827", zorder=4,
                   label=f"baseline ({board.baseline})")
    ranked = points[points["status"] == "ranked"]
    front = pareto_front(ranked["runtime_ms"].tolist(), ranked["psnr"].tolist())
    if len(front) > 1:
        ax.step(ranked["runtime_ms"].iloc[front], ranked["psnr"].iloc[front], where="post", color="#10b981",
                linewidth=1.6, linestyle="--", zorder=2, label="Pareto front (ranked)")

    # Entries at the same spot share one label instead of printing over each other.
    groups: dict[tuple[float, float], list[str]] = {}
    for i, p in shown.iterrows():
        name = p["submission"] + (f" ({points.at[i, 'psnr']:.2f} dB ↓)" if below[i] else "")
        groups.setdefault((round(p["runtime_ms"], 3), round(p["psnr"], 3)), []).append(name)
    for (x, y), names in groups.items():
        ax.annotate(", ".join(names), (x, y), xytext=(6, 5), textcoords="offset points", fontsize=8.5, color="#374151")

    ax.set_ylim(low, high)
    spread = points["runtime_ms"].max() / max(points["runtime_ms"].min(), 1e-9)
    if spread > 30:
        ax.set_xscale("log")


def svg_of(fig) -> str:
    """The figure as an inline <svg> element (text kept as text, so it stays small and crisp)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]
