"""The PSNR-vs-runtime plot of a leaderboard: one point per measured submission, the Pareto front.

Point labels never overlap each other or a marker and stay inside the axes: each is put at the
free spot nearest its point (measured in points, so the PNG and the SVG agree), with a leader
line when that spot is not beside the point. adjustText only minimises overlaps iteratively (on
nine clustered entries it left two pairs overlapping and three labels outside the axes, in over
a second), so the placement is our own.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    dataset = plot_dataset(board)
    threshold = board.thresholds.get(dataset) if dataset else None
    fig = Figure(figsize=(10, 5.2), dpi=110)
    FigureCanvasAgg(fig)  # a renderer to measure the labels with
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
    labels: list[PointLabel] = []
    if points.empty:
        ax.text(0.5, 0.5, "no submission has both a runtime and a PSNR", ha="center", va="center",
                transform=ax.transAxes, color="#6b7280")
    else:
        labels = _draw_points(ax, board, points.reset_index(drop=True), threshold)
    if threshold is not None:
        ax.axhline(threshold, color="#dc2626", linestyle=":", linewidth=1.4, zorder=1,
                   label=f"threshold {threshold:.2f} dB")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False)
    footer = fig.text(0.01, 0.015, f"device {board.device} · harness {board.harness_version or 'unknown'} · "
                      f"commit {board.git_commit or 'unknown'}", fontsize=7.5, color="#6b7280")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    unplaced = place_labels(ax, labels)  # after the layout: placement needs the final axes
    if unplaced:
        footer.set_text(f"{footer.get_text()} · not labelled, no room: {', '.join(unplaced)}")
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


def _draw_points(ax, board: Leaderboard, points: pd.DataFrame, threshold: float | None) -> list[PointLabel]:
    """Scatter and Pareto front, and the labels to place; references far below the field are pinned to the
    bottom edge."""
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
    baseline_at = {(round(x, 3), round(y, 3)) for x, y in zip(base["runtime_ms"], base["psnr"])}
    labels = [PointLabel(", ".join(names), x, y, STAR_RADIUS_PT if (x, y) in baseline_at else MARKER_RADIUS_PT)
              for (x, y), names in groups.items()]

    ax.set_ylim(low, high)
    spread = points["runtime_ms"].max() / max(points["runtime_ms"].min(), 1e-9)
    if spread > 30:
        ax.set_xscale("log")
    return labels


# ------------------------------------------------------------------------ labels

LABEL_STYLE = {"fontsize": 8.5, "color": "#374151",
               "bbox": {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}}
LABEL_GID_PREFIX = "point-label-"  # the labels' ids in the SVG
LABEL_ZORDER = 5  # above the markers (3, 4), so a leader line never strikes through a label
LEADER_ZORDER = 2.8
MARKER_RADIUS_PT = 5.0  # what a label keeps clear of around a marker (the dots are ~7 pt wide)
STAR_RADIUS_PT = 8.5  # the baseline's star is ~15 pt wide
LABEL_GAP_PT = 2.0  # between two labels, and between a label and the axes' edge
# A browser may draw the SVG's text in a wider font than matplotlib measured; labels are
# left-aligned, so the slack goes on their right.
FONT_SLACK = 1.12
GRID_STEP_PT = 2.0
SEARCH_PT = (220.0, 130.0)  # how far from its point a label is first looked for (x, y)
BESIDE_PT = 6.0  # a label farther than this beyond its marker's clearance gets a leader line
LEADER_STYLE = {"color": "#9ca3af", "linewidth": 0.7, "solid_capstyle": "butt"}


@dataclass(frozen=True)
class PointLabel:
    """A label to place: its text, the data point it names, and the radius of that point's marker."""

    text: str
    x: float
    y: float
    marker_radius_pt: float = MARKER_RADIUS_PT


def _free(boxes: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """Which candidate boxes (N x 4: x0, y0, x1, y1) intersect none of the obstacle boxes (M x 4)."""
    if not len(obstacles):
        return np.ones(len(boxes), dtype=bool)
    apart = ((boxes[:, None, 2] <= obstacles[None, :, 0]) | (boxes[:, None, 0] >= obstacles[None, :, 2])
             | (boxes[:, None, 3] <= obstacles[None, :, 1]) | (boxes[:, None, 1] >= obstacles[None, :, 3]))
    return apart.all(axis=1)


def _nearest_free_box(point: np.ndarray, size: np.ndarray, area: np.ndarray, obstacles: np.ndarray,
                      search: tuple[float, float] | None) -> np.ndarray | None:
    """The lower-left corner of the free box of ``size`` inside ``area`` nearest ``point`` (all in points).

    Candidates lie on a grid within ``search`` of the point (or over the whole area); ties go
    to the right of and above the point, where a label is read first.
    """
    if search is None:
        xs = np.arange(area[0], area[2] - size[0] + 1e-9, GRID_STEP_PT)
        ys = np.arange(area[1], area[3] - size[1] + 1e-9, GRID_STEP_PT)
    else:
        xs = point[0] + np.arange(-size[0] - search[0], search[0], GRID_STEP_PT)
        ys = point[1] + np.arange(-size[1] - search[1], search[1], GRID_STEP_PT)
        xs = xs[(xs >= area[0]) & (xs + size[0] <= area[2])]
        ys = ys[(ys >= area[1]) & (ys + size[1] <= area[3])]
    if not len(xs) or not len(ys):
        return None
    corners = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    boxes = np.concatenate([corners, corners + size], axis=1)
    keep = _free(boxes, obstacles)
    if not keep.any():
        return None
    corners, boxes = corners[keep], boxes[keep]
    dx = np.maximum.reduce([boxes[:, 0] - point[0], np.zeros(len(boxes)), point[0] - boxes[:, 2]])
    dy = np.maximum.reduce([boxes[:, 1] - point[1], np.zeros(len(boxes)), point[1] - boxes[:, 3]])
    left_or_below = (boxes[:, 2] <= point[0]) * 0.5 + (boxes[:, 3] <= point[1]) * 0.25
    return corners[np.argmin(np.hypot(dx, dy) + left_or_below)]


def place_labels(ax, labels: list[PointLabel]) -> list[str]:
    """Annotate each point with its label at the nearest spot where it overlaps no other label or marker and
    stays inside the axes; returns the labels for which the axes had no room (normally none).

    Call it once the layout and the axis limits are final: it freezes the limits and measures in
    the figure's current geometry.
    """
    if not labels:
        return []
    ax.set_xlim(ax.get_xlim())  # labels and leader lines must not move the view they were placed in
    ax.set_ylim(ax.get_ylim())
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_points = 72.0 / fig.dpi
    axes_box = ax.get_window_extent(renderer)
    area = np.array([axes_box.x0, axes_box.y0, axes_box.x1, axes_box.y1]) * to_points
    area += [LABEL_GAP_PT, LABEL_GAP_PT, -LABEL_GAP_PT, -LABEL_GAP_PT]
    anchors = ax.transData.transform([(label.x, label.y) for label in labels]) * to_points
    radii = np.array([[label.marker_radius_pt] for label in labels])
    obstacles = np.concatenate([anchors - radii, anchors + radii], axis=1)
    to_data = ax.transData.inverted()
    unplaced = []
    for i in sorted(range(len(labels)), key=lambda i: (anchors[i, 0], -anchors[i, 1])):
        label, anchor = labels[i], anchors[i]
        text = ax.annotate(label.text, (label.x, label.y), xytext=(0, 0), textcoords="offset points", ha="left",
                           va="bottom", zorder=LABEL_ZORDER, gid=f"{LABEL_GID_PREFIX}{i}", **LABEL_STYLE)
        extent = text.get_window_extent(renderer)
        size = np.array([extent.width * FONT_SLACK, extent.height]) * to_points
        padded = obstacles + [-LABEL_GAP_PT, -LABEL_GAP_PT, LABEL_GAP_PT, LABEL_GAP_PT]
        corner = _nearest_free_box(anchor, size, area, padded, SEARCH_PT)
        if corner is None:
            corner = _nearest_free_box(anchor, size, area, padded, None)
        if corner is None:
            text.remove()
            unplaced.append(label.text)
            continue
        text.set_position(tuple(float(v) for v in corner - anchor))
        obstacles = np.concatenate([obstacles, [np.concatenate([corner, corner + size])]])
        reach = np.clip(anchor, corner, corner + [extent.width * to_points, size[1]]) - anchor
        length = float(np.hypot(*reach))
        if length > label.marker_radius_pt + LABEL_GAP_PT + BESIDE_PT:
            # drawn under the labels' backgrounds, from the marker's edge to the label
            start = anchor + reach * (label.marker_radius_pt / length)
            ends = to_data.transform(np.array([start, anchor + reach]) / to_points)
            ax.plot(ends[:, 0], ends[:, 1], zorder=LEADER_ZORDER, **LEADER_STYLE)
    return unplaced


def svg_of(fig) -> str:
    """The figure as an inline <svg> element (text kept as text, so it stays small and crisp)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]
