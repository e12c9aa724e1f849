"""End-to-end runs of the command line on real and tiny data."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from ntire_bench.cli.main import main

from support.helpers import make_dataset, write_registry

from support.paths import REPO
from support.paths import PLUGINS
FAST = ["--timing", "fixed", "--warmup", "0", "--repeats", "1", "--no-progress", "--device", "cpu"]


def _invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def set5_run(tmp_path_factory, model_zoo, shared_data):
    """`ntire-bench run` of rlfn and bicubic on Set5 with the official checkpoints."""
    out = tmp_path_factory.mktemp("set5")
    result = subprocess.run(
        [sys.executable, "-m", "ntire_bench.cli", "run", "submissions/rlfn.py", "submissions/bicubic.py",
         "--dataset", "Set5", "--model-zoo", str(model_zoo), "--out", str(out / "results"),
         "--leaderboard", str(out / "leaderboard"), *FAST],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return {"out": out, "stdout": result.stdout, "stderr": result.stderr}


def test_rlfn_matches_the_official_set5_figures(set5_run, set5_reference):
    record = json.loads((set5_run["out"] / "results" / "rlfn.json").read_text())
    reference = set5_reference["models"]["rlfn"]
    assert record["status"] == "ok" and record["error"] is None
    set5 = record["datasets"]["Set5"]
    assert set5["psnr"] == pytest.approx(reference["Set5"]["mean"]["psnr"], abs=5e-4)
    for ours, theirs in zip(set5["images"], reference["Set5"]["images"], strict=True):
        assert ours["name"] == theirs["name"]
        assert ours["psnr"] == pytest.approx(theirs["psnr"], abs=1e-3)
        assert ours["psnr_y"] == pytest.approx(theirs["psnr_y"], abs=1e-3)
    for key in ("params", "flops", "activations", "num_conv"):
        assert record[key] == reference[key]
    assert record["checkpoint"]["sha256"] and record["environment"]["torch"]
    assert {"median", "mean"} <= set(set5["runtime_ms"])


def test_bicubic_matches_the_published_set5_figure(set5_run):
    record = json.loads((set5_run["out"] / "results" / "bicubic.json").read_text())
    assert record["status"] == "ok" and record["params"] == 0
    assert record["datasets"]["Set5"]["psnr_y"] == pytest.approx(28.42, abs=5e-3)


def test_run_writes_and_prints_the_leaderboard(set5_run):
    board = pd.read_csv(set5_run["out"] / "leaderboard" / "leaderboard.csv")
    assert list(board["submission"]) == ["rlfn", "bicubic"]
    assert board.loc[0, "score"] == pytest.approx(7.3891, abs=1e-4)
    assert "reference" in board.loc[1, "reason"]
    assert "rlfn" in set5_run["stdout"] and "7.3891" in set5_run["stdout"]
    # `score` re-ranks the stored results without re-measuring, to the same table.
    again = _invoke("score", "--results", set5_run["out"] / "results", "--out", set5_run["out"] / "rescored")
    assert again.exit_code == 0, again.output
    rescored = pd.read_csv(set5_run["out"] / "rescored" / "leaderboard.csv")
    pd.testing.assert_frame_equal(board, rescored)


def test_missing_checkpoint_gives_no_weights_and_the_others_still_run(tmp_path, shared_data):
    # RLFN's ESA (stride-2 conv, then a 7x7 max-pool) needs an LR side of at least ~17 px.
    registry = write_registry(tmp_path / "d.yaml", {"tiny": make_dataset(tmp_path / "tiny", 2, hr_size=(96, 128))})
    empty_zoo = tmp_path / "zoo"
    empty_zoo.mkdir()
    result = _invoke("run", REPO / "submissions" / "rlfn.py", REPO / "submissions" / "bicubic.py",
                     PLUGINS / "hostile" / "raises_on_import.py", "--datasets-file", registry, "--dataset", "tiny",
                     "--model-zoo", empty_zoo, "--out", tmp_path / "r", "--leaderboard", tmp_path / "lb", *FAST)
    assert result.exit_code == 0, result.output
    records = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "r").glob("*.json")}
    assert records["rlfn"]["status"] == "no_weights"
    assert "ntire2024_rlfn_baseline.pth not found" in records["rlfn"]["error"]
    assert records["rlfn"]["flops"] == 19674859520 and records["rlfn"]["datasets"]["tiny"]["psnr"] is None
    assert records["rlfn"]["datasets"]["tiny"]["runtime_ms"]["mean"] > 0
    assert records["bicubic"]["status"] == "ok" and records["bicubic"]["datasets"]["tiny"]["psnr"] > 20
    assert records["raises_on_import"]["status"] == "failed"
    # The baseline has no weights, yet its measured runtime still normalises the scores.
    assert (tmp_path / "lb" / "leaderboard.csv").exists()


def test_demo_is_the_default_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("NTIRE_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    result = _invoke("run", PLUGINS / "good" / "tiny_net.py", REPO / "submissions" / "bicubic.py",
                     "--out", tmp_path / "r", "--leaderboard", tmp_path / "lb", *FAST)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "r" / "tiny_net.json").read_text())
    assert list(record["datasets"]) == ["demo"] and record["datasets"]["demo"]["num_images"] == 6
    assert "leaderboard not written: " in result.output  # no rlfn among these two: said, not crashed


def test_list_shows_every_status(tmp_path, model_zoo):
    result = _invoke("list", REPO / "submissions", PLUGINS / "hostile" / "raises_on_import.py",
                     "--model-zoo", model_zoo)
    assert result.exit_code == 1  # a broken plugin is in the list
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "found" in lines["rlfn"] and "ok" in lines["rlfn"]
    assert "not needed" in lines["bicubic"]
    assert "found" in lines["lgvan"]  # the NTIRE 2023 checkpoint ../shared ships
    assert "missing (glanet_small_x4.pth)" in lines["glanet"]
    assert "pad to 8" in lines["glanet"]
    assert "broken" in lines["raises_on_import"] and "import failed" in lines["raises_on_import"]
    assert _invoke("list", REPO / "submissions").exit_code == 0


def test_bench_times_without_data_or_weights(tmp_path):
    out = tmp_path / "bench.json"
    result = _invoke("bench", "rlfn", "--submissions", REPO / "submissions", "--size", "24x20", "--count", "2",
                     "--runs", "2", "--warmup", "1", "--repeats", "2", "--no-progress", "--device", "cpu",
                     "--json", out)
    assert result.exit_code == 0, result.output
    measured = json.loads(out.read_text())
    assert measured["weights"] in (True, False) and measured["inputs"] == [[24, 20], [24, 20]]
    assert len(measured["runtime_ms"]["runs"]) == 2 and "between-pass CV" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "submissions", "--dataset", "Set6"], "unknown dataset 'Set6'"),
        (["run", "submissions", "--device", "cuda:7"] if not __import__("torch").cuda.is_available()
         else ["run", "submissions", "--device", "tpu"], "--device"),
        (["run", "submissions", "--only", "rlfm"], "did you mean 'rlfn'"),
        (["bench", "rlfn", "--size", "big"], "expected HEIGHTxWIDTH"),
    ],
)
def test_bad_usage_is_one_line_with_exit_2(args, message, monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.gpu
def test_cuda_run_records_event_timing_memory_and_telemetry(tmp_path):
    registry = write_registry(tmp_path / "d.yaml", {"tiny": make_dataset(tmp_path / "tiny", 2, hr_size=(96, 128))})
    result = _invoke("run", REPO / "submissions" / "rlfn.py", REPO / "submissions" / "bicubic.py",
                     "--datasets-file", registry, "--dataset", "tiny", "--device", "cuda", "--runs", "2",
                     "--timing", "fixed",
                     "--out", tmp_path / "r", "--leaderboard", tmp_path / "lb", "--no-progress")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "r" / "rlfn.json").read_text())
    assert record["environment"]["device"].startswith("cuda") and record["environment"]["gpu"]["name"]
    assert record["settings"] == record["settings"] | {"warmup": 5, "repeats": 20, "cudnn_benchmark": False}
    tiny = record["datasets"]["tiny"]
    assert tiny["peak_memory_mb"] > 0 and record["complexity"]["peak_memory_mb"] > 0
    assert tiny["images"][0]["runtime_ms"]["n"] == 40 and len(tiny["runtime_ms"]["runs"]) == 2
    telemetry = record["environment"].get("gpu_telemetry")
    if telemetry is not None and "sm_clock_mhz" in (telemetry["start"] or {}):
        assert telemetry["end"]["sm_clock_mhz"] > 0


def test_a_later_run_is_ranked_with_earlier_results(tmp_path):
    registry = write_registry(tmp_path / "d.yaml", {"tiny": make_dataset(tmp_path / "tiny", 2, hr_size=(96, 128))})
    common = ["--datasets-file", registry, "--dataset", "tiny", "--out", tmp_path / "r", "--leaderboard",
              tmp_path / "lb", *FAST]
    assert _invoke("run", REPO / "submissions" / "rlfn.py", *common).exit_code == 0
    later = _invoke("run", PLUGINS / "good" / "tiny_net.py", *common)
    assert later.exit_code == 0, later.output
    board = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    assert set(board["submission"]) == {"rlfn", "tiny_net"}
