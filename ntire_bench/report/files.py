"""Writing the leaderboard's files: CSV, Markdown, JSON, the HTML page and the PNG plot."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ntire_bench.report.html import to_html
from ntire_bench.report.plot import make_figure, svg_of
from ntire_bench.report.tables import to_json, to_markdown
from ntire_bench.scoring.leaderboard import Leaderboard


def write_leaderboard(board: Leaderboard, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write leaderboard.{csv,md,json,html,png} into ``out_dir``; return their paths by format."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {fmt: out / f"leaderboard.{fmt}" for fmt in ("csv", "md", "json", "html", "png")}
    board.table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(to_markdown(board), encoding="utf-8")
    paths["json"].write_text(json.dumps(to_json(board), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    fig = make_figure(board)
    fig.savefig(paths["png"], dpi=150)
    paths["html"].write_text(to_html(board, svg_of(fig)), encoding="utf-8")
    return paths
