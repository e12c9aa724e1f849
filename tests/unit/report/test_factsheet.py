"""The factsheet table: golden Markdown and LaTeX for a made-up record, missing figures, LaTeX escaping."""

from __future__ import annotations

import pytest
from support.factory import T, V, make_result

from ntire_bench.report.factsheet import FactsheetError, build_factsheet, factsheet_text, latex_escape
from ntire_bench.results.records import ComplexityResult, Environment, SubmissionResult


def lgvan_like(memory: tuple[float | None, float | None] = (1114.72, 1000.0)) -> SubmissionResult:
    """LGVAN's 2023 figures on a made-up GPU run: 29.00 / 27.07 dB, 153.30 / 108.16 ms."""
    record = make_result("lgvan", psnr={V: 29.0, T: 27.07}, runtime={V: 153.30, T: 108.16})
    record.complexity = ComplexityResult(params=118_243, flops=9_036_601_472, activations=332_392_832, num_conv=122)
    for name, peak in zip((V, T), memory):
        record.datasets[name].peak_memory_mb = peak
    return record


GOLDEN_MARKDOWN = """\
| PSNR [val] | PSNR [test] | Params [M] | FLOPs [G] | GPU Mem. [M] | Activations [M] | Runtime [ms] |
|---|---|---|---|---|---|---|
| 29.00 | 27.07 | 0.1182 | 9.0366 | 1114.72 | 332.39 | 130.73 |

- lgvan: PSNR [val] on DIV2K_LSDIR_valid, PSNR [test] on DIV2K_LSDIR_test (RGB, dB).
- FLOPs: fvcore (1 multiply-add = 1 FLOP), at 1x3x256x256; Activations: Conv2d output elements at the same size.
- Runtime: mean of per-image medians on each of DIV2K_LSDIR_valid and DIV2K_LSDIR_test, averaged over the two sets.
- GPU Mem.: peak CUDA memory (MiB) over the DIV2K_LSDIR_valid and DIV2K_LSDIR_test runs.
- Device: NVIDIA GeForce RTX 3090 (cuda:0); ntire-bench 0.1.0.
"""

GOLDEN_LATEX = r"""\begin{table}[t]
    \centering
    \caption{lgvan: PSNR [val] on DIV2K\_LSDIR\_valid, PSNR [test] on DIV2K\_LSDIR\_test (RGB, dB). FLOPs: fvcore (1 multiply-add = 1 FLOP), at 1x3x256x256; Activations: Conv2d output elements at the same size. Runtime: mean of per-image medians on each of DIV2K\_LSDIR\_valid and DIV2K\_LSDIR\_test, averaged over the two sets. GPU Mem.: peak CUDA memory (MiB) over the DIV2K\_LSDIR\_valid and DIV2K\_LSDIR\_test runs. Device: NVIDIA GeForce RTX 3090 (cuda:0); ntire-bench 0.1.0.}
    \begin{tabular}{|c|c|c|c|c|c|c|}\hline
        PSNR [val] & PSNR [test] & Params [M] & FLOPs [G] & GPU Mem. [M] & Activations [M] & Runtime [ms] \\ \hline
        29.00 & 27.07 & 0.1182 & 9.0366 & 1114.72 & 332.39 & 130.73 \\ \hline
    \end{tabular}
\end{table}
"""


def test_golden_markdown_and_latex() -> None:
    assert factsheet_text(lgvan_like(), formats=("markdown",)) == GOLDEN_MARKDOWN
    assert factsheet_text(lgvan_like(), formats=("latex",)) == GOLDEN_LATEX
    assert factsheet_text(lgvan_like()) == GOLDEN_MARKDOWN + "\n" + GOLDEN_LATEX


def test_figures_are_scaled_to_the_factsheet_units() -> None:
    sheet = build_factsheet(lgvan_like())
    psnr_val, psnr_test, params_m, flops_g, memory, acts_m, runtime = sheet.values
    assert (psnr_val, psnr_test, memory) == (29.0, 27.07, 1114.72)  # memory: the larger of the two sets' peaks
    assert params_m == pytest.approx(0.118243) and flops_g == pytest.approx(9.036601472)
    assert acts_m == pytest.approx(332.392832)
    assert runtime == pytest.approx((153.30 + 108.16) / 2)  # the 2023 table's "Ave.": mean of the two sets


def test_a_cpu_record_shows_a_dash_for_gpu_memory_and_says_why() -> None:
    record = lgvan_like(memory=(None, None))
    record.environment = Environment(harness_version="0.1.0", device="cpu", device_name="AMD EPYC")
    text = factsheet_text(record, formats=("markdown",))
    assert "| 29.00 | 27.07 | 0.1182 | 9.0366 | — | 332.39 | 130.73 |" in text
    assert "- GPU Mem.: not measured (the record was made on cpu, not CUDA): run it on a GPU to fill it in." in text
    assert "- Device: AMD EPYC (cpu); ntire-bench 0.1.0." in text
    assert "& 9.0366 & --- & 332.39 &" in factsheet_text(record, formats=("latex",))


def test_a_recorded_convention_names_the_flop_counter() -> None:
    record = lgvan_like()
    record.complexity.flops = 9_057_572_992
    record.complexity.convention = "ntire2023-hooks"
    text = factsheet_text(record, formats=("markdown",))
    assert "| 9.0576 |" in text
    assert "- FLOPs: the NTIRE 2023 hooks of utils/model_summary.py (1 multiply-add = 1 FLOP), at 1x3x256x256;" in text
    record.complexity.convention = "someday"
    assert "- FLOPs: someday convention, at" in factsheet_text(record, formats=("markdown",))


def test_set5_can_stand_in_for_both_sets() -> None:
    record = lgvan_like()
    record.datasets = {"Set5": record.datasets[V]}
    text = factsheet_text(record, valid="Set5", test="Set5", formats=("markdown",))
    assert "| 29.00 | 29.00 |" in text
    assert "- Runtime: mean of per-image medians on Set5." in text


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.datasets.pop(T),
     f"lgvan.json: no {T} result (the test set): run it on that set, or pass --test NAME (measured: {V})"),
    (lambda r: r.datasets.pop(V), f"no {V} result (the valid set): run it on that set"),
    (lambda r: setattr(r.datasets[T], "psnr", None), f"{T} has no PSNR (measured without ground truth)"),
    (lambda r: setattr(r.datasets[V], "runtime_ms", None), f"{V} has no runtime: re-run it on that set"),
    (lambda r: setattr(r, "complexity", None), "no params, FLOPs or activations recorded"),
    (lambda r: setattr(r.complexity, "activations", None), "no params, FLOPs or activations recorded"),
    (lambda r: (setattr(r, "status", "no_weights"), setattr(r, "error", "checkpoint not found")),
     "status is no_weights (checkpoint not found), so its figures are not the trained network's"),
])
def test_a_missing_figure_is_named_in_one_line(change, message: str) -> None:
    record = lgvan_like()
    record.origin = "lgvan.json"
    change(record)
    with pytest.raises(FactsheetError) as info:
        factsheet_text(record)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_latex_escape_escapes_every_special_character() -> None:
    assert latex_escape(r"a_b & 5% $x# {y} ~z^ \ —") == (
        r"a\_b \& 5\% \$x\# \{y\} \textasciitilde{}z\textasciicircum{} \textbackslash{} ---")


def test_names_in_the_caption_are_escaped() -> None:
    record = lgvan_like()
    record.submission = "team_07&co"
    record.environment.device_name = "GPU #1 (100% mine)"
    caption = factsheet_text(record, formats=("latex",)).splitlines()[2]
    assert r"team\_07\&co: PSNR [val] on DIV2K\_LSDIR\_valid" in caption
    assert r"Device: GPU \#1 (100\% mine) (cuda:0)" in caption
    body = caption.replace("\\_", "").replace("\\&", "").replace("\\#", "").replace("\\%", "")
    assert not any(char in body for char in "_&#%")


def test_a_cuda_record_without_memory_says_to_re_run_it() -> None:
    text = factsheet_text(lgvan_like(memory=(None, None)), formats=("markdown",))
    assert "| 9.0366 | — | 332.39 |" in text
    assert f"- GPU Mem.: not recorded for {V} and {T}: re-run them on cuda:0 to fill it in." in text
