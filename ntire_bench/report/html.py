"""The leaderboard as a self-contained HTML page: a sortable table, the plot inlined as SVG."""

from __future__ import annotations

import html
import math
from typing import Any


from ntire_bench.report.format import (BASELINE_SCORE, baseline_runtime_text, fmt, fmt_bound, fmt_rank, fmt_score, has_intervals, missing, noise_legend, noise_marker, noise_spans, provenance, psnr_columns, row_status)
from ntire_bench.scoring.leaderboard import PSNR_PREFIX, Leaderboard
from ntire_bench.report.plot import plot_dataset
from ntire_bench.report.format import row_note


_CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--soft:#f9fafb;--accent:#2563eb;--bad:#b91c1c;--warn:#b45309;--good:#047857}
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:32px auto;padding:0 24px}
header h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
header p{margin:0;color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:20px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.card b{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:600}
.card span{font-size:15px;font-weight:600;word-break:break-word}
.legend{background:#fff;border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:10px;padding:12px 16px;margin-bottom:20px}
.legend code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:2px 6px;border-radius:4px}
.panel{background:#fff;border:1px solid var(--line);border-radius:10px;overflow:auto;margin-bottom:20px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:8px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid var(--line)}
th{position:sticky;top:0;background:var(--soft);font-size:12px;color:#374151;cursor:pointer;user-select:none}
th:hover{color:var(--accent)}
th[aria-sort=ascending]::after{content:" ▲";font-size:9px}
th[aria-sort=descending]::after{content:" ▼";font-size:9px}
td.name,th.name{text-align:left}
th{white-space:normal;vertical-align:bottom;max-width:130px}
th small{display:block;font-weight:400;color:var(--muted);font-size:11px}
td.name{white-space:normal;min-width:230px;max-width:380px}
td.name .note{font-size:12px;line-height:1.35;margin-top:2px}
td.rank{font-weight:700;font-size:15px}
tr.ranked td.score{font-weight:700;color:var(--accent)}
tr.top1 td.rank{color:#b45309}
tr.ineligible td{color:#9ca3af}
tr.ineligible td.name{color:#4b5563}
tr.ineligible .note{color:var(--warn)}
tr.failed .note{color:var(--bad)}
tr.reference .note,tr.no-weights .note{color:var(--muted)}
tr.baseline{background:#eff6ff}
tbody tr:hover{background:#f8fafc}
td.below{color:var(--bad)!important;font-weight:600}
small.sub{color:var(--muted);font-size:11px;margin-left:4px}
.pill{display:inline-block;font-size:11px;padding:1px 8px;border-radius:999px;margin-left:6px;vertical-align:1px;font-weight:600}
.pill.baseline{background:#dbeafe;color:#1d4ed8}.pill.reference{background:#f3f4f6;color:#4b5563}
.pill.failed{background:#fee2e2;color:var(--bad)}.pill.no-weights{background:#f3f4f6;color:#4b5563}
.pill.ineligible{background:#fef3c7;color:var(--warn)}
.ci{display:block;font-size:11px;font-weight:400;color:var(--muted);margin-top:1px}
tr.ranked td.score .ci{color:#60a5fa}
.tie{display:inline-block;min-width:18px;margin-left:5px;padding:0 5px;border-radius:999px;background:#ede9fe;
color:#6d28d9;font-size:11px;font-weight:700;vertical-align:2px;cursor:help}
td.band-a{box-shadow:inset 4px 0 0 #a78bfa}td.band-b{box-shadow:inset 4px 0 0 #f472b6}
.legend p{margin:8px 0 0}
figure{margin:0;padding:16px}
figure svg{width:100%;height:auto}
figcaption{color:var(--muted);font-size:13px;padding:0 4px 4px}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding:14px 0 40px}
footer dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
footer dt{font-weight:600}footer dd{margin:0;word-break:break-all}
"""

# Sort on click: numbers by data-v (empty sorts last either way), text otherwise.
_JS = """
document.querySelectorAll("table.sortable th").forEach(function(th, col){
  th.addEventListener("click", function(){
    var table = th.closest("table"), body = table.tBodies[0];
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    table.querySelectorAll("th").forEach(function(h){ h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      if (x === "" && y === "") return 0;
      if (x === "") return 1;
      if (y === "") return -1;
      var nx = parseFloat(x), ny = parseFloat(y);
      if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
      return dir * x.localeCompare(y);
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def _th(label: str, cls: str, unit: str) -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    unit_html = f"<small>{html.escape(unit)}</small>" if unit else ""
    # <wbr> lets long dataset names (DIV2K_LSDIR_valid) wrap at underscores.
    return f'<th{cls_attr} title="click to sort">{html.escape(label).replace("_", "_<wbr>")}{unit_html}</th>'


def _cell(value: Any, text: str, cls: str = "", extra: str = "") -> str:
    sort_key = "" if missing(value) else str(value)
    cls_attr = f' class="{cls}"' if cls else ""
    return f'<td{cls_attr} data-v="{html.escape(sort_key)}">{text}{extra}</td>'


def _interval_html(low: Any, high: Any, digits: int, log10_low: Any = None, log10_high: Any = None) -> str:
    """A cell's interval as a small second line, or nothing when the row has none."""
    if missing(low) or missing(high):
        return ""
    if math.isfinite(high) and math.isclose(low, high, rel_tol=1e-12):
        return '<span class="ci">exact</span>'
    return (f'<span class="ci">{fmt_bound(low, log10_low, digits)} – {fmt_bound(high, log10_high, digits)}'
            "</span>")


def _tie_badge(marker: str, track: str = "") -> str:
    """The ≈ badge for a row within noise of its neighbours (``marker`` as ``report.noise_marker`` gives it)."""
    if not marker:
        return ""
    ranks = marker[1:]
    what = f"rank {ranks}" if "–" not in ranks else f"ranks {ranks}"
    tip = f"within measurement noise: the {track}score intervals of {what} overlap"
    return f'<span class="tie" title="{html.escape(tip)}">{html.escape(marker)}</span>'


def to_html(board: Leaderboard, svg: str | None = None) -> str:
    """A self-contained HTML page: provenance cards, score legend, sortable table, plot and footer."""
    esc = html.escape
    psnr_cols = psnr_columns(board)
    heads = ([("Rank", "", ""), ("Submission", "name", ""), ("Score", "", "lower is better"),
              ("Runtime", "", "ms"), ("Params", "", "M"), ("FLOPs", "", "G")]
             + [(f"PSNR {d}", "", f"≥ {board.thresholds[d]:.2f} dB" if d in board.thresholds else "dB")
                for d in board.datasets]
             + [("Runtime score", "", "sub-rank"), ("FLOPs score", "", "sub-rank"), ("Params score", "", "sub-rank")])
    thead = "".join(_th(label, cls, unit) for label, cls, unit in heads)

    intervals = has_intervals(board)
    spans, runtime_spans = noise_spans(board), noise_spans(board, "runtime")
    bands = {group: "band-a" if i % 2 == 0 else "band-b" for i, group in enumerate(sorted(spans))}
    body = []
    for _, row in board.table.iterrows():
        status = row_status(row)
        classes = ["ranked" if row["eligible"] else "ineligible"]
        if status not in ("ranked", "ineligible"):
            classes.append(status.replace(" ", "-"))
        if row["submission"] == board.baseline:
            classes.append("baseline")
        if row["eligible"] and row["rank"] == 1:
            classes.append("top1")
        pills = ""
        if row["submission"] == board.baseline:
            pills += '<span class="pill baseline">baseline</span>'
        if status != "ranked":
            pills += f'<span class="pill {status.replace(" ", "-")}">{esc(status)}</span>'
        note = f'<div class="note">{esc(row_note(row))}</div>' if row_note(row) else ""
        marker = noise_marker(row, spans)
        rank_class = "rank" + (f" {bands[int(row['tie_group'])]}" if marker else "")
        score_ci = _interval_html(row["score_low"], row["score_high"], 4, row["score_log10_low"],
                                  row["score_log10_high"])
        cells = [_cell(row["rank"], fmt_rank(row["rank"]), rank_class, _tie_badge(marker)),
                 _cell(row["submission"], esc(row["submission"]), "name", pills + note),
                 _cell(row["score"], fmt_score(row), "score", score_ci),
                 _cell(row["runtime_ms"], fmt(row["runtime_ms"], 2), "",
                       _interval_html(row["runtime_ms_low"], row["runtime_ms_high"], 2)),
                 _cell(row["params_m"], fmt(row["params_m"], 3)),
                 _cell(row["flops_g"], fmt(row["flops_g"], 2))]
        for column in psnr_cols:
            threshold = board.thresholds.get(column[len(PSNR_PREFIX):])
            below = threshold is not None and not missing(row[column]) and row[column] < threshold
            cells.append(_cell(row[column], fmt(row[column], 2), "below" if below else ""))
        for key in ("runtime", "flops", "params"):
            sub = "" if missing(row["rank_" + key]) else f'<small class="sub">#{int(row["rank_" + key])}</small>'
            if key == "runtime":
                sub += _tie_badge(noise_marker(row, runtime_spans, "runtime"), "runtime ")
                sub += _interval_html(row["score_runtime_low"], row["score_runtime_high"], 4)
            cells.append(_cell(row["score_" + key], fmt(row["score_" + key], 4), "", sub))
        body.append(f'<tr class="{" ".join(classes)}">' + "".join(cells) + "</tr>")

    cards = "".join(f'<div class="card"><b>{esc(k)}</b><span>{esc(v)}</span></div>' for k, v in (
        ("Edition", board.edition.name), ("Baseline", board.baseline), ("Device", board.device),
        ("Ranked", f"{int(board.table['eligible'].sum())} of {len(board.table)}"),
        ("Harness", board.harness_version or "unknown")))
    footer = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in provenance(board))
    base = board.baseline_metrics
    dataset = plot_dataset(board)
    figure = ""
    if svg:
        caption = (f"PSNR on {dataset} against the scored runtime. The dashed line joins the Pareto front "
                   "of the ranked entries (none is both faster and better); the dotted line is the PSNR threshold.")
        figure = f'<section class="panel"><figure>{svg}<figcaption>{esc(caption)}</figcaption></figure></section>'
    noise = ""
    if intervals:
        noise = (f'<p>{esc(noise_legend(board))} The badge <span class="tie">≈</span> (hover it for the ranks) and '
                 "the coloured bar beside the rank mark such a group; the small figures under a score or runtime "
                 "are its interval.</p>")
    title = f"Efficient SR leaderboard — {board.edition.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_CSS}</style></head>
<body><main>
<header><h1>{esc(title)}</h1><p>{esc(board.edition.description or "Efficient super-resolution (x4)")}</p></header>
<div class="cards">{cards}</div>
<div class="legend"><b>Score</b> = <code>{esc(board.edition.formula())}</code><br>
Each term is <code>exp(2 · value / baseline value)</code>, so the baseline ({esc(board.baseline)}: {esc(baseline_runtime_text(board))},
{base['params_m']:.3f} M params, {base['flops_g']:.2f} GFLOPs) scores <b>{BASELINE_SCORE:.4f}</b> on every score.
Lower is better; ties share a rank. Rows below the ranked ones are listed with the reason they are not ranked.
Runtime scored: {esc(board.runtime_rule)}. Click a column header to sort.{noise}</div>
<section class="panel"><table class="sortable" id="leaderboard">
<thead><tr>{thead}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody></table></section>
{figure}
<footer><dl>{footer}</dl></footer>
</main>
<script>{_JS}</script>
</body></html>
"""


