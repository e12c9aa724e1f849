"""`ntire-bench factsheet` end to end: a results file written by the store, through the installed command."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.factory import T, V, make_result, write_results

from ntire_bench.results.records import ComplexityResult


def factsheet(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ntire_bench.cli", "factsheet", *map(str, args)],
                          check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def results_dir(tmp_path):
    tiny = make_result("tiny", psnr={V: 26.95, T: 27.02, "Set5": 31.5}, runtime={V: 12.0, T: 8.0, "Set5": 2.5},
                       params=90_000, flops=5e9)
    tiny.complexity = ComplexityResult(params=90_000, flops=5_000_000_000, activations=40_000_000, num_conv=12)
    tiny.datasets[T].peak_memory_mb = 512.25
    no_test = make_result("half", psnr={V: 26.95})
    return write_results(tmp_path / "results", [tiny, no_test])


def test_prints_markdown_then_latex_for_a_stored_record(results_dir) -> None:
    run = factsheet(results_dir / "tiny.json")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == ("| PSNR [val] | PSNR [test] | Params [M] | FLOPs [G] | GPU Mem. [M] | Activations [M] "
                        "| Runtime [ms] |")
    assert lines[2] == "| 26.95 | 27.02 | 0.0900 | 5.0000 | 512.25 | 40.00 | 10.00 |"
    assert "- Device: NVIDIA GeForce RTX 3090 (cuda:0); ntire-bench 0.1.0." in lines
    assert r"        26.95 & 27.02 & 0.0900 & 5.0000 & 512.25 & 40.00 & 10.00 \\ \hline" in lines
    assert lines[-1] == r"\end{table}"


def test_set5_stands_in_and_one_format_can_be_chosen(results_dir) -> None:
    run = factsheet(results_dir / "tiny.json", "--valid", "Set5", "--test", "Set5", "--format", "markdown")
    assert run.returncode == 0, run.stderr
    assert "| 31.50 | 31.50 | 0.0900 | 5.0000 | — | 40.00 | 2.50 |" in run.stdout
    assert "\\begin{table}" not in run.stdout


@pytest.mark.parametrize(("name", "message"), [
    ("half.json", f"Error: half.json: no {T} result (the test set): run it on that set, or pass --test NAME"),
    ("absent.json", "absent.json: no such results file; run `ntire-bench run` first"),
])
def test_missing_figures_and_files_fail_in_one_line(results_dir, name: str, message: str) -> None:
    run = factsheet(results_dir / name)
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr


def test_an_unreadable_file_fails_in_one_line(tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "ntire-bench/results/v2", "submission": ')
    run = factsheet(broken)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [run.stderr.strip()] and "broken.json: not valid JSON" in run.stderr
