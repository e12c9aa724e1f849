"""Leaderboard writers: CSV columns, metadata in every other output, the HTML page and its plot."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest

from ntire_bench import report
from ntire_bench.report import plot as report_plot
from ntire_bench.scoring.leaderboard import LEADERBOARD_COLUMNS, score_results
from support.factory import DEVICE, T, V, make_result, rlfn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def board():
    return score_results([
        rlfn(runtime=11.77, params=317_218, flops=19_674_859_520),
        make_result("span", psnr={V: 26.94, T: 27.01}, runtime=6.2, params=150_688, flops=9_833_807_872),
        make_result("efdn", psnr={V: 26.93, T: 27.01}, runtime=9.8, params=276_192, flops=16_703_470_848),
        make_result("tiny", psnr={V: 26.80, T: 26.88}, runtime=3.1, params=90_000, flops=5e9),
        make_result("bicubic", psnr={V: 24.5, T: 24.6}, runtime=0.4, params=0, flops=0, reference=True),
        make_result("broken", status="failed", params=None, flops=None, error="ImportError: no module named <foo>"),
    ], edition="ntire2024", source="results")


def test_write_leaderboard_writes_every_format(board, tmp_path):
    paths = report.write_leaderboard(board, tmp_path / "out")
    assert set(paths) == {"csv", "md", "json", "html", "png"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_is_a_clean_table_with_exact_columns(board, tmp_path):
    path = report.write_leaderboard(board, tmp_path)["csv"]
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(LEADERBOARD_COLUMNS) + [f"psnr_{V}", f"psnr_{T}"]
    assert [r["submission"] for r in rows] == ["span", "efdn", "rlfn", "tiny", "bicubic", "broken"]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "", "", ""]
    assert rows[3]["reason"].startswith("PSNR 26.80 dB")


def test_json_md_and_html_state_edition_baseline_device_and_version(board, tmp_path):
    paths = report.write_leaderboard(board, tmp_path)
    meta = json.loads(paths["json"].read_text())["metadata"]
    assert (meta["edition"], meta["baseline"], meta["device"], meta["harness_version"]) == (
        "ntire2024", "rlfn", DEVICE, "0.1.0")
    assert meta["git_commit"] == "abc1234" and meta["thresholds_db"] == {V: 26.9, T: 26.99}
    rows = json.loads(paths["json"].read_text())["rows"]
    assert rows[-1]["score"] is None and rows[0]["rank"] == 1
    for fmt in ("md", "html"):
        text = paths[fmt].read_text()
        for needle in ("ntire2024", "rlfn", DEVICE, "0.1.0", "abc1234"):
            assert needle in text, (fmt, needle)


def test_html_is_self_contained_and_escapes_names(board, tmp_path):
    text = report.write_leaderboard(board, tmp_path)["html"].read_text()
    assert "<svg" in text and "<script>" in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched from a network
    assert "no module named &lt;foo&gt;" in text
    assert text.count('<tr class="') == len(board.table)


def test_format_table_lists_every_row_and_the_provenance(board):
    text = report.format_table(board)
    lines = text.splitlines()
    assert lines[0] == f"edition ntire2024 · baseline rlfn · device {DEVICE} · harness 0.1.0"
    assert len(lines) == 2 + len(board.table)
    assert lines[2].split()[:3] == ["1", "span", f"{board.table.loc[0, 'score']:.4f}"]
    assert "reference (listed, never ranked)" in text and "failed: ImportError" in text


def test_pareto_front():
    runtime = [1.0, 2.0, 3.0, 4.0, 2.5]
    psnr = [26.0, 27.0, 26.5, 27.5, 27.0]
    assert report_plot.pareto_front(runtime, psnr) == [0, 1, 3]


def test_plot_uses_the_runtime_dataset_and_copes_with_no_points(board):
    assert report_plot.plot_dataset(board) == V
    bare = score_results([make_result("rlfn", psnr={"Set5": float("nan")}, runtime=1.0)])
    assert report_plot.plot_dataset(bare) is None
    report_plot.make_figure(bare)  # draws an explanatory note instead of failing


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
def test_html_renders_in_headless_chromium(board, tmp_path):
    from PIL import Image

    html_path = report.write_leaderboard(board, tmp_path)["html"]
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1400,1600", html_path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50  # None: more colours than counted, certainly not blank

    dom = subprocess.run(flags + ["--dump-dom", html_path.as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert dom.count('<tr class="') == len(board.table)
    for name in board.table["submission"]:
        assert f">{name}<" in dom

    # Clicking "Runtime" sorts by runtime, fastest first, rows without a runtime last.
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html_path.read_text().replace(
        "</body>", '<script>document.querySelectorAll("th")[3].click()</script></body>'))
    dom = subprocess.run(flags + ["--dump-dom", clicked.as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    order = re.findall(r'<td class="name" data-v="([^"]+)"', dom)
    assert order == ["bicubic", "tiny", "span", "efdn", "rlfn", "broken"]
