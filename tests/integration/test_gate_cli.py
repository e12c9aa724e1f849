"""`ntire-bench score` and `ntire-bench gate` end to end, on fake results directories."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ntire_bench.cli.main import main
from ntire_bench.scoring.leaderboard import LEADERBOARD_COLUMNS
from support.factory import DEVICE, T, V, make_result, rlfn, write_results


@pytest.fixture
def results_dir(tmp_path):
    return write_results(tmp_path / "results", [
        rlfn(),
        make_result("span", psnr={V: 26.94, T: 27.01}, runtime=6.0, params=150_000, flops=10e9),
        make_result("bicubic", psnr={V: 24.5, T: 24.6}, runtime=0.4, params=0, flops=0, reference=True),
        make_result("nockpt", psnr={V: 11.0, T: 11.0}, status="no_weights", error="checkpoint not found"),
    ])


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ------------------------------------------------------------------------------ score


def test_score_writes_every_output_with_columns_and_metadata(results_dir, tmp_path):
    out = tmp_path / "board"
    result = invoke("score", "--results", results_dir, "--edition", "ntire2024", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("edition ntire2024 · baseline rlfn")
    for fmt in ("csv", "md", "json", "html", "png"):
        assert (out / f"leaderboard.{fmt}").stat().st_size > 0
    with (out / "leaderboard.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(LEADERBOARD_COLUMNS) + [f"psnr_{V}", f"psnr_{T}"]
    assert [(r["rank"], r["submission"]) for r in rows[:2]] == [("1", "span"), ("2", "rlfn")]
    meta = json.loads((out / "leaderboard.json").read_text())["metadata"]
    assert (meta["edition"], meta["baseline"], meta["device"], meta["harness_version"]) == (
        "ntire2024", "rlfn", DEVICE, "0.1.0")
    assert meta["source"] == str(results_dir)
    md = (out / "leaderboard.md").read_text()
    assert "ntire2024" in md and DEVICE in md and "0.1.0" in md


def test_score_defaults_to_results_and_leaderboard_in_the_working_directory(results_dir):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=results_dir.parent):
        shutil.copytree(results_dir, "results")
        result = runner.invoke(main, ["score"])
        assert result.exit_code == 0, result.output
        meta = json.loads(open("leaderboard/leaderboard.json").read())["metadata"]
        assert meta["edition"] == "default" and meta["thresholds_db"] == {V: 26.9, T: 26.99}


def test_score_a_metrics_csv(tmp_path):
    table = tmp_path / "ntire2024.csv"
    table.write_text("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\n"
                     "RLFN,26.96,27.07,11.77,0.317,19.67\nlow,26.80,27.00,5.0,0.1,5.0\n")
    result = invoke("score", "--metrics", table, "--edition", "ntire2024", "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "b" / "leaderboard.csv").open()))
    assert (rows[0]["submission"], round(float(rows[0]["score"]), 3)) == ("RLFN", 7.389)
    assert rows[1]["eligible"] == "False"


@pytest.mark.parametrize("records, args, message", [
    ([rlfn(), make_result("x", psnr={V: 27.0, T: 27.0}, device="NVIDIA A100")], [], "different devices"),
    ([make_result("span", psnr={V: 27.0, T: 27.0})], [], "baseline 'rlfn' is not among the results"),
    ([rlfn()], ["--edition", "ntire2o24"], "did you mean 'ntire2024'"),
    ([rlfn()], ["--threshold", "Set5:30"], "'Set5:30' is not DATASET=DB"),
])
def test_score_refusals_exit_2_with_one_line(tmp_path, records, args, message):
    directory = write_results(tmp_path / "r", records)
    result = invoke("score", "--results", directory, "--out", tmp_path / "b", *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "b").exists()


def test_score_bad_csv_and_both_sources_exit_2(results_dir, tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g\nA,27,x,1,1,1\n")
    result = invoke("score", "--metrics", table)
    assert result.exit_code == 2 and f"{table}: row 2, column psnr_test" in result.output
    result = invoke("score", "--metrics", table, "--results", results_dir)
    assert result.exit_code == 2 and "not both" in result.output


# ------------------------------------------------------------------------------- gate


def test_gate_exit_0_when_every_evaluated_submission_passes(results_dir):
    result = invoke("gate", "--results", results_dir, "--edition", "ntire2024")
    assert result.exit_code == 0, result.output
    assert "gate passed: rlfn, span meet" in result.output


def test_gate_exit_1_prints_one_line_per_failure(results_dir):
    write_results(results_dir, [
        make_result("low", psnr={V: 26.85, T: 27.0}),
        make_result("crashed", status="failed", error="CUDA out of memory"),
    ])
    result = invoke("gate", "--results", results_dir, "--edition", "ntire2024", "--threshold", f"{T}=27.05")
    assert result.exit_code == 1
    fails = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert fails == [
        "FAIL crashed: failed: CUDA out of memory",
        f"FAIL low {V}: PSNR 26.85 dB, threshold 26.90 dB",
        f"FAIL low {T}: PSNR 27.00 dB, threshold 27.05 dB",
        f"FAIL span {T}: PSNR 27.01 dB, threshold 27.05 dB",
    ]


def test_gate_exit_2_on_usage_and_data_errors(results_dir, tmp_path):
    assert invoke("gate", "--results", tmp_path / "missing").exit_code == 2
    (tmp_path / "empty").mkdir()
    assert invoke("gate", "--results", tmp_path / "empty").exit_code == 2
    assert invoke("gate", "--results", results_dir, "--threshold", "Set5=high").exit_code == 2
    assert invoke("gate", "--results", results_dir, "--edition", "nope").exit_code == 2
    (results_dir / "corrupt.json").write_text("{")
    result = invoke("gate", "--results", results_dir)
    assert result.exit_code == 2 and "corrupt.json" in result.output
    assert invoke("gate", "--results", results_dir).exit_code == 2  # the bad file was not moved aside


def test_gate_as_a_real_subprocess(results_dir):
    exe = shutil.which("ntire-bench")
    command = [exe] if exe else [sys.executable, "-m", "ntire_bench.cli"]
    ok = subprocess.run(command + ["gate", "--results", str(results_dir), "--edition", "ntire2024"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    failing = subprocess.run(command + ["gate", "--results", str(results_dir), "--threshold", f"{V}=26.95"],
                             capture_output=True, text=True, timeout=60)
    assert failing.returncode == 1
    assert f"FAIL span {V}: PSNR 26.94 dB, threshold 26.95 dB" in failing.stdout
    missing = subprocess.run(command + ["gate", "--results", str(results_dir / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such results directory" in missing.stderr


def test_ci_example_installs_torch_cpu_then_runs_and_gates(repo_root, results_dir):
    import yaml

    workflow = yaml.safe_load((repo_root / "docs" / "ci-gate-example.yml").read_text())
    steps = [step.get("run", "") for step in workflow["jobs"]["gate"]["steps"]]
    order = [next(i for i, s in enumerate(steps) if needle in s)
             for needle in ("download.pytorch.org/whl/cpu", "pip install .", "ntire-bench run", "ntire-bench gate")]
    assert order == sorted(order)
    # The documented gate command, as written, passes on results that meet the threshold.
    gate = next(s for s in steps if "ntire-bench gate" in s)
    args = gate.replace('"$DATASET=', f"{V}=").replace('"', "").split()[1:]
    args[args.index("--results") + 1] = str(results_dir)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
