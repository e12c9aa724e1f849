"""The trust boundary, tried as a hostile team would (tests/support/plugins/hostile/): every attack fails that
submission alone with a precise one-line reason, and a good neighbour's figures equal a clean run."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from ntire_bench.data.datasets import load_dataset_specs
from ntire_bench.runner.discovery import discover
from ntire_bench.results.records import OK
from ntire_bench.runner.evaluation import run_benchmark
from ntire_bench.runner.context import RunConfig, hidden_paths
from ntire_bench.data.datasets import prepare_datasets

from support.helpers import make_dataset, write_registry

from support.paths import PLUGINS
TIMING = dict(timing="fixed", warmup=1, repeats=3, threads=1, progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    registry = write_registry(root / "datasets.yaml", {"A": make_dataset(root / "A", 3)})
    return {"root": root, "A": load_dataset_specs(registry)["A"]}


@pytest.fixture(scope="module")
def hostile_run(tiny, tmp_path_factory):
    """One isolated run of every hostile plugin beside a good neighbour, as an organiser would."""
    out = tmp_path_factory.mktemp("results")
    zoo = tmp_path_factory.mktemp("zoo")
    torch.save({"wrong.weight": torch.zeros(1)}, zoo / "bad_checkpoint.pth")
    datasets = prepare_datasets([tiny["A"]], progress=False)
    entries = discover([PLUGINS / "hostile", PLUGINS / "good" / "tiny_net.py"], include_entry_points=False,
                       hidden=hidden_paths([d.spec for d in datasets], out))
    config = RunConfig(out_dir=out, device="cpu", model_zoo=[zoo], timeout_s=12, memory_limit_bytes=3 * 2**30,
                       seed=0, **TIMING)
    records = run_benchmark(entries, datasets, config)
    return {"out": out, "records": {r.submission: r for r in records}}


def _clean(tiny, tmp_path, plugin: Path):
    entries = discover([plugin], include_entry_points=False)
    return run_benchmark(entries, prepare_datasets([tiny["A"]], progress=False),
                         RunConfig(out_dir=tmp_path, device="cpu", seed=0, **TIMING))[0]


@pytest.mark.parametrize(
    "name, reason",
    [
        # crashes and bad outputs
        ("raises_on_import", r"^raises_on_import.py: import failed: RuntimeError: this plugin is broken at import time \(at raises_on_import.py:1\)$"),
        ("raises_in_forward", r"^counting complexity raised ValueError: forward exploded \(at raises_in_forward.py:\d+\)$"),
        ("wrong_shape", r"^A/0001: output shape is \(1, 3, 24, 32\), expected \(1, 3, 48, 64\)$"),
        ("nan_output", r"^A/0001: output has 3 NaN/Inf values$"),
        ("wrong_dtype", r"^A/0001: output dtype is torch.int64, expected a floating-point tensor$"),
        ("sleeps", r"^timed out after 12 s \(the --timeout limit\)$"),
        ("exits", r"^worker process exited with code 3"),
        ("segfaults", r"^worker process died with signal SIGSEGV$"),
        ("memory_hog", r"^out of memory while counting complexity: RuntimeError: .*can't allocate memory"),
        ("nondeterministic", r"^A/0001: non-deterministic output"),
        ("bad_checkpoint", r"^bad_checkpoint.pth does not match the architecture: missing keys \[conv.bias, "
                           r"conv.weight\]; unexpected keys \[wrong.weight\]$"),
        # the protocol
        ("garbles_protocol", r"^the worker sent a malformed reply: b'garbage that is not json'$"),
        ("forges_blindly", r"^the worker sent a forged or out-of-order reply to 'load' \(sequence 1, expected 1\)$"),
        ("partial_reply", r"^timed out after 12 s \(the --timeout limit\)$"),
        ("bad_sr", r"^A/0001: the worker delivered a float32 array of shape \(3, 7, 7\), expected uint8 \(3, 48, 64\)$"),
        # timings
        ("clock_tamper", r"^timing not credible: the submission replaced the clocks the harness reads "
                         r"\(time.perf_counter_ns\)$"),
        ("clock_tamper_deep", r"^timing not credible: the samples add up to [\d.]+ ms but the parent's clock measured "
                              r"[\d.]+ ms around 3 repeats and their challenge \(clocks slowed, or work done outside "
                              r"the timed region\)$"),
        ("memoizes", r"^timing not credible: in \d+ of 9 timed repeats the output did not change when the input did "
                     r"\(a memoized or cached forward\)$"),
        ("emulates", r"^timing not credible: on A, a timed repeat's output differs by [\d.e+-]+ grey levels from the same "
                     r"input's output recomputed in a fresh process \(tolerance 0.013\): the timed forward was not the "
                     r"model's \(memoized, cached or substituted\)$"),
        ("forges_reply", r"^timing not credible: the samples add up to 0.00 ms but the parent's clock measured [\d.]+ ms "
                         r"around 3 repeats and their challenge \(clocks slowed, or work done outside the timed "
                         r"region\)$"),
    ],
)
def test_each_attack_fails_alone_with_a_precise_reason(hostile_run, name, reason):
    record = hostile_run["records"][name]
    assert record.status == "failed", (record.status, record.error)
    assert record.error and "\n" not in record.error
    assert re.search(reason, record.error), record.error
    assert (hostile_run["out"] / f"{name}.json").read_text().count(record.error.split(":")[0]) >= 1


def test_a_good_neighbour_matches_a_clean_run(hostile_run, tiny, tmp_path):
    clean = _clean(tiny, tmp_path, PLUGINS / "good" / "tiny_net.py")
    beside = hostile_run["records"]["tiny_net"]
    assert beside.status == clean.status == OK
    assert beside.complexity == clean.complexity
    quality = lambda r: [(i.name, i.psnr, i.psnr_y, i.ssim, i.ssim_y) for i in r.datasets["A"].images]  # noqa: E731
    assert quality(beside) == quality(clean)
    assert beside.datasets["A"].timing_audit.verified.startswith("2 timed repeats recomputed in a fresh process")


def test_patching_the_harness_at_import_changes_nobody_s_figures(hostile_run):
    patcher, neighbour = hostile_run["records"]["patches_harness"], hostile_run["records"]["tiny_net"]
    assert patcher.status == OK  # its patches only ever ran in its own worker processes
    # It is the neighbour's network: the parent measured it exactly as it measured the neighbour.
    assert [i.psnr for i in patcher.datasets["A"].images] == [i.psnr for i in neighbour.datasets["A"].images]
    assert patcher.datasets["A"].psnr < 99.0 and patcher.complexity == neighbour.complexity


def test_the_ground_truth_is_out_of_reach(hostile_run, tiny):
    record = hostile_run["records"]["hr_search"]
    assert record.status == OK
    assert all(math.isfinite(i.psnr) for i in record.datasets["A"].images)  # it never found an HR image
    log = (hostile_run["out"] / "logs" / "hr_search.log").read_text()
    assert "hr_search: " in log, log[-500:]  # the search ran
    assert str(tiny["root"]) not in log and str(hostile_run["out"]) not in log
    assert record.sandbox.mechanism in ("bubblewrap", "landlock")


def test_nothing_a_submission_leaves_behind_outlives_it(hostile_run):
    assert hostile_run["records"]["leaves_processes"].status == OK
    for pid in filter(str.isdigit, __import__("os").listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert b"ntire-bench-hostile-leftover" not in cmdline, f"process {pid} survived its submission"


def test_no_honest_submission_is_flagged_and_the_audit_is_recorded(hostile_run):
    for name in ("tiny_net", "patches_harness", "hr_search", "leaves_processes"):
        audit = hostile_run["records"][name].datasets["A"].timing_audit
        assert audit.requests == 3 + audit.retries and audit.probes_checked > 0 and audit.verified
        assert 0 < audit.claimed_ms <= audit.observed_ms
