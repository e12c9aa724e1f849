"""Untrusted submissions in child processes: every failure mode recorded, neighbours unaffected,
HR never visible, results durable across kill -9 and resumable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ntire_bench.data import load_dataset_specs
from ntire_bench.plugins import discover
from ntire_bench.runner import RunConfig, prepare_datasets, run_benchmark

from helpers import make_dataset, write_registry

PLUGINS = Path(__file__).parent / "plugins"
SNOOP_REPORT = Path("/tmp/ntire_bench_hr_snoop_report.txt")
FAST = dict(warmup=0, repeats=1, progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    registry = write_registry(
        root / "datasets.yaml", {"A": make_dataset(root / "A", 3), "B": make_dataset(root / "B", 2, seed=7)}
    )
    specs = load_dataset_specs(registry)
    return {"root": root, "registry": registry, "A": specs["A"], "B": specs["B"]}


@pytest.fixture(scope="module")
def hostile_run(tiny, tmp_path_factory):
    """One isolated run over every hostile plugin plus a good neighbour, as an organiser would."""
    out = tmp_path_factory.mktemp("results")
    zoo = tmp_path_factory.mktemp("zoo")
    torch.save({"wrong.weight": torch.zeros(1)}, zoo / "bad_checkpoint.pth")
    SNOOP_REPORT.unlink(missing_ok=True)
    entries = discover([PLUGINS / "hostile", PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    config = RunConfig(out_dir=out, device="cpu", model_zoo=[zoo], timeout_s=10,
                       memory_limit_bytes=3 * 2**30, threads=1, **FAST)
    records = run_benchmark(entries, prepare_datasets([tiny["A"]], progress=False), config)
    snooped = SNOOP_REPORT.read_text() if SNOOP_REPORT.exists() else None
    SNOOP_REPORT.unlink(missing_ok=True)
    return {"out": out, "records": {r["submission"]: r for r in records}, "snooped": snooped}


@pytest.mark.parametrize(
    "name, reason",
    [
        ("raises_on_import", r"raises_on_import.py: import failed: RuntimeError: this plugin is broken"),
        # Complexity is counted with a forward pass before any image, so forward failures surface there.
        ("raises_in_forward", r"^counting complexity raised ValueError: forward exploded$"),
        ("wrong_shape", r"A/0001: output shape is \(1, 3, 24, 32\), expected \(1, 3, 48, 64\)"),
        ("nan_output", r"^A/0001: output has 3 NaN/Inf values$"),
        ("sleeps", r"timed out after 10 s"),
        ("exits", r"worker process exited with code 3"),
        ("segfaults", r"worker process died with signal SIGSEGV"),
        ("garbles_protocol", r"the worker sent a malformed reply: b'garbage that is not json"),
        ("wrong_dtype", r"^A/0001: output dtype is torch.int64, expected a floating-point tensor$"),
        ("memory_hog", r"^out of memory while counting complexity: RuntimeError: .*can't allocate memory"),
        ("nondeterministic", r"A/0001: non-deterministic output"),
        ("bad_checkpoint", r"bad_checkpoint.pth does not match the architecture: missing keys \[conv.bias, conv.weight\]; unexpected keys \[wrong.weight\]"),
    ],
)
def test_each_failure_mode_is_recorded(hostile_run, name, reason):
    record = hostile_run["records"][name]
    assert record["status"] == "failed"
    assert record["error"] and "\n" not in record["error"]
    assert re.search(reason, record["error"]), record["error"]
    on_disk = json.loads((hostile_run["out"] / f"{name}.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["error"] == record["error"]


def test_good_neighbour_matches_a_clean_run(hostile_run, tiny, tmp_path):
    entries = discover([PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    clean = run_benchmark(entries, prepare_datasets([tiny["A"]], progress=False),
                          RunConfig(out_dir=tmp_path, device="cpu", threads=1, **FAST))[0]
    beside = hostile_run["records"]["tiny_net"]
    assert beside["status"] == clean["status"] == "ok"
    for key in ("params", "flops", "activations", "num_conv"):
        assert beside[key] == clean[key]
    quality = lambda r: [(i["name"], i["psnr"], i["psnr_y"], i["ssim"], i["ssim_y"]) for i in r["datasets"]["A"]["images"]]
    assert quality(beside) == quality(clean)
    assert beside["plugin"]["sha256"] and len(beside["plugin"]["sha256"]) == 64


def test_hr_never_reaches_the_child(hostile_run, tiny):
    snooped = hostile_run["snooped"]
    assert snooped, "the snooping plugin never ran"
    assert hostile_run["records"]["hr_snoop"]["status"] == "ok"
    hr_dir = str(tiny["A"].hr_path())
    data_root = str(tiny["root"])
    for line in snooped.splitlines():
        assert hr_dir not in line and data_root not in line, f"child saw {line!r}"
    assert ".npy" in snooped  # it did see its own inputs, so the search was real


def test_checkpoint_hash_is_recorded(hostile_run):
    checkpoint = hostile_run["records"]["bad_checkpoint"]["checkpoint"]
    assert checkpoint["file"] == "bad_checkpoint.pth" and len(checkpoint["sha256"]) == 64


def _run_cli(args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "ntire_bench.cli", "run", *args], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_kill_minus_nine_then_resume(tiny, tmp_path):
    out = tmp_path / "results"
    args = [str(PLUGINS / "good" / "slow_net.py"), "--datasets-file", str(tiny["registry"]), "--dataset", "A",
            "--dataset", "B", "--out", str(out), "--leaderboard", str(tmp_path / "lb"), "--device", "cpu",
            "--warmup", "0", "--repeats", "2", "--no-progress"]
    proc = _run_cli(args)
    path = out / "slow_net.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if path.exists() and "A" in json.loads(path.read_text())["datasets"]:
            break
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = json.loads(path.read_text())  # never half-written
    assert set(partial["datasets"]) == {"A"}, "the kill should land while B is being measured"
    first_a = partial["datasets"]["A"]
    assert not list(out.glob(".*.tmp"))

    finished = subprocess.run([sys.executable, "-m", "ntire_bench.cli", "run", *args], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    final = json.loads(path.read_text())
    assert set(final["datasets"]) == {"A", "B"}
    assert final["datasets"]["A"] == first_a  # reused, not recomputed
    assert final["status"] == "ok"

    again = subprocess.run([sys.executable, "-m", "ntire_bench.cli", "run", *args], capture_output=True, text=True)
    assert "up to date" in again.stderr
    assert json.loads(path.read_text()) == final


def test_changed_settings_or_force_remeasure(tiny, tmp_path):
    entries = discover([PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    datasets = prepare_datasets([tiny["A"]], progress=False)
    base = dict(out_dir=tmp_path, device="cpu", threads=1, progress=False, log=lambda m: None, warmup=0)
    first = run_benchmark(entries, datasets, RunConfig(repeats=1, **base))[0]["datasets"]["A"]
    time.sleep(1.1)  # measured_at has one-second resolution
    same = run_benchmark(entries, datasets, RunConfig(repeats=1, **base))[0]["datasets"]["A"]
    assert same["measured_at"] == first["measured_at"]
    with pytest.warns(UserWarning, match="measured with other code"):
        changed = run_benchmark(entries, datasets, RunConfig(repeats=2, **base))[0]["datasets"]["A"]
    assert changed["measured_at"] != first["measured_at"] and changed["images"][0]["runtime_ms"]["n"] == 2
    time.sleep(1.1)
    forced = run_benchmark(entries, datasets, RunConfig(repeats=2, force=True, **base))[0]["datasets"]["A"]
    assert forced["measured_at"] != changed["measured_at"]


def test_other_datasets_are_kept_and_stale_results_set_aside(tiny, tmp_path):
    entries = discover([PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    base = dict(out_dir=tmp_path, device="cpu", threads=1, progress=False, log=lambda m: None, warmup=0)
    first_a = run_benchmark(entries, prepare_datasets([tiny["A"]], progress=False), RunConfig(repeats=1, **base))[0]
    both = run_benchmark(entries, prepare_datasets([tiny["B"]], progress=False), RunConfig(repeats=1, **base))[0]
    assert set(both["datasets"]) == {"A", "B"} and both["datasets"]["A"] == first_a["datasets"]["A"]
    forced = run_benchmark(entries, prepare_datasets([tiny["B"]], progress=False),
                           RunConfig(repeats=1, force=True, **base))[0]
    assert set(forced["datasets"]) == {"A", "B"}
    with pytest.warns(UserWarning, match="measured with other code, weights, device or settings"):
        changed = run_benchmark(entries, prepare_datasets([tiny["B"]], progress=False),
                                RunConfig(repeats=2, **base))[0]
    assert set(changed["datasets"]) == {"B"}
    aside = list(tmp_path.glob("tiny_net.json.stale-*"))
    assert len(aside) == 1 and set(json.loads(aside[0].read_text())["datasets"]) == {"A", "B"}


def test_corrupt_results_file_is_set_aside(tiny, tmp_path):
    (tmp_path / "tiny_net.json").write_text('{"schema": "ntire-bench/results/v1", "subm')
    entries = discover([PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    with pytest.warns(UserWarning, match="not valid JSON.*moved it to tiny_net.json.bad-"):
        record = run_benchmark(entries, prepare_datasets([tiny["A"]], progress=False),
                               RunConfig(out_dir=tmp_path, device="cpu", **FAST))[0]
    assert record["status"] == "ok"
    assert len(list(tmp_path.glob("tiny_net.json.bad-*"))) == 1


def test_extra_timing_passes_run_in_fresh_processes(tiny, tmp_path):
    entries = discover([PLUGINS / "good" / "tiny_net.py"], include_entry_points=False)
    record = run_benchmark(entries, prepare_datasets([tiny["B"]], progress=False),
                           RunConfig(out_dir=tmp_path, device="cpu", runs=3, **FAST))[0]
    runtime = record["datasets"]["B"]["runtime_ms"]
    assert len(runtime["runs"]) == 3 and runtime["run_cv"] is not None
    assert record["datasets"]["B"]["images"][0]["runtime_ms"]["n"] == 3
