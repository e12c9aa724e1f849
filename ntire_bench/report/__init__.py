"""Leaderboard writers: CSV, Markdown, JSON, a self-contained HTML page and the PSNR-vs-runtime plot."""

from ntire_bench.report.tables import format_table, to_json, to_markdown
from ntire_bench.report.files import write_leaderboard
from ntire_bench.report.html import to_html

__all__ = ["format_table", "to_html", "to_json", "to_markdown", "write_leaderboard"]
