"""The plot's point labels never overlap and stay inside the axes, in matplotlib and in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from matplotlib.text import Text
from support.factory import make_result

from ntire_bench import report
from ntire_bench.report import plot as report_plot
from ntire_bench.scoring.leaderboard import score_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NAMES = ["rlfn", "span", "efdn", "rfdn", "lgvan", "dlgsanet_tiny", "dlgsanet_light", "edsr_baseline", "edsr_ggas",
         "glanet", "team_alpha", "team_beta", "team_gamma", "team_delta", "team_epsilon", "team_zeta", "team_eta",
         "team_theta", "team_iota", "team_kappa", "team_lambda", "team_mu", "team_nu", "team_xi"]


def clustered_board(count: int):
    """``count`` entries within 2.7 ms and 0.1 dB of each other on Set5, and one slow entry far away: the
    close ones get a few pixels of the plot between them."""
    records = [make_result(NAMES[i], psnr={"Set5": 30.2 + (i * 37 % 11) / 100}, runtime=100.0 + (i * 53 % 17) / 6,
                           thresholds={}) for i in range(count)]
    records.append(make_result("slow_and_good", psnr={"Set5": 30.6}, runtime=400.0, thresholds={}))
    return score_results(records, edition=None, baseline="rlfn", source="results")


def label_boxes(fig):
    """Each label's text box (display pixels), measured after drawing; ``Text.get_window_extent`` leaves
    out an annotation's arrow, so only the text is measured."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return {text.get_text(): Text.get_window_extent(text, renderer) for text in ax.texts}, ax.get_window_extent(renderer)


@pytest.mark.parametrize("count", [9, 24])
def test_labels_of_many_close_points_never_overlap_and_stay_inside_the_axes(count: int) -> None:
    board = clustered_board(count)
    fig = report_plot.make_figure(board)
    boxes, axes_box = label_boxes(fig)
    assert set(boxes) == {*NAMES[:count], "slow_and_good"}  # every entry labelled, none dropped
    names = sorted(boxes)
    overlapping = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if boxes[a].overlaps(boxes[b])]
    assert not overlapping
    outside = [n for n, box in boxes.items() if not (axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1
                                                     and axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1)]
    assert not outside
    assert "not labelled" not in fig.texts[-1].get_text()


def test_without_crowding_each_label_sits_beside_its_point_with_no_leader_line() -> None:
    board = score_results([make_result("rlfn", psnr={"Set5": 30.2}, runtime=10.0, thresholds={}),
                           make_result("span", psnr={"Set5": 30.4}, runtime=20.0, thresholds={})],
                          edition=None, baseline="rlfn", source="results")
    fig = report_plot.make_figure(board)
    boxes, _ = label_boxes(fig)
    ax = fig.axes[0]
    for name, point in (("rlfn", (10.0, 30.2)), ("span", (20.0, 30.4))):
        x, y = ax.transData.transform(point)
        box = boxes[name]
        gap_px = (max(box.x0 - x, 0, x - box.x1) ** 2 + max(box.y0 - y, 0, y - box.y1) ** 2) ** 0.5
        radius = report_plot.STAR_RADIUS_PT if name == "rlfn" else report_plot.MARKER_RADIUS_PT
        clearance = radius + report_plot.LABEL_GAP_PT
        assert clearance <= gap_px * 72 / fig.dpi <= clearance + report_plot.BESIDE_PT, name  # clear, yet beside
    assert not [line for line in ax.lines if line.get_zorder() == report_plot.LEADER_ZORDER]


def test_when_the_axes_have_no_room_left_the_footer_says_which_labels_are_missing() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.5, 1.0), dpi=72)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    labels = [report_plot.PointLabel(f"a rather long label {i}", 0.5, 0.5) for i in range(6)]
    unplaced = report_plot.place_labels(ax, labels)
    boxes, _ = label_boxes(fig)
    assert unplaced and len(boxes) + len(unplaced) == 6
    assert set(boxes).isdisjoint(unplaced)
    names = sorted(boxes)
    assert not [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if boxes[a].overlaps(boxes[b])]


# The page's own fonts, not matplotlib's measurements: the browser lays out the SVG's text, and
# this script reports each label's box and the plot's, written into the DOM for --dump-dom.
LABEL_PROBE = """<script>
const svg = document.querySelector("svg");
const box = r => [r.left, r.top, r.right, r.bottom];
const labels = [...document.querySelectorAll('g[id^="LABEL_GID_PREFIX"] text')].map(t => [t.textContent, box(t.getBoundingClientRect())]);
const out = document.createElement("pre");
out.id = "label-probe";
out.textContent = JSON.stringify({svg: box(svg.getBoundingClientRect()), labels: labels});
document.body.appendChild(out);
</script></body>""".replace("LABEL_GID_PREFIX", report_plot.LABEL_GID_PREFIX)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
def test_the_html_page_with_many_close_points_renders_legibly_in_headless_chromium(tmp_path) -> None:
    from PIL import Image

    html_path = report.write_leaderboard(clustered_board(9), tmp_path / "board")["html"]
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1400,1600", html_path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50  # None: more colours than counted, certainly not blank

    probed = tmp_path / "probed.html"
    probed.write_text(html_path.read_text(encoding="utf-8").replace("</body>", LABEL_PROBE), encoding="utf-8")
    dom = subprocess.run(flags + ["--window-size=1400,1600", "--dump-dom", probed.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    found = json.loads(dom.split('<pre id="label-probe">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    labels = dict(found["labels"])
    assert set(labels) == {*NAMES[:9], "slow_and_good"}

    def apart(a, b):
        return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]

    names = sorted(labels)
    assert not [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if not apart(labels[a], labels[b])]
    left, top, right, bottom = found["svg"]
    assert all(left <= x0 and x1 <= right and top <= y0 and y1 <= bottom for x0, y0, x1, y1 in labels.values())
