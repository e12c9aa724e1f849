"""The trust boundary, tried as a hostile team would (tests/support/plugins/hostile/): every attack fails that
submission alone with a precise one-line reason, and a good neighbour's figures equal a clean run."""

from __future__ import annotations

import math
import re
from dataclasses import replace
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
    entries = discover([PLUGINS / "hostile", PLUGINS / "good" / "tiny_net.py"],
                       include_entry_points=False,
                       hidden=hidden_paths([d.spec for d in datasets], out))
    config = RunConfig(out_dir=out, device="cpu", model_zoo=[zoo], timeout_s=20, memory_limit_bytes=3 * 2**30,
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
        ("sleeps", r"^timed out after 20 s \(the --timeout limit\)$"),
        ("exits", r"^worker process exited with code 3"),
        ("segfaults", r"^worker process died with signal SIGSEGV$"),
        ("memory_hog", r"^out of memory while counting complexity: RuntimeError: .*can't allocate memory"),
        ("bad_checkpoint", r"^bad_checkpoint.pth does not match the architecture: missing keys \[conv.bias, "
                           r"conv.weight\]; unexpected keys \[wrong.weight\]$"),
        # the protocol
        ("garbles_protocol", r"^the worker sent a malformed reply: b'garbage that is not json'$"),
        ("forges_blindly", r"^the worker sent a forged or out-of-order reply to 'load' \(sequence 1, expected 1\)$"),
        ("partial_reply", r"^timed out after 20 s \(the --timeout limit\)$"),
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
        ("computes_partly", r"^timing not credible: on A, a timed repeat's output differs by [\d.e+-]+ grey levels from "
                            r"the same input's output recomputed in a fresh process"),
        # complexity
        ("hides_from_tracer", r"^complexity not credible: the graph it was counted on computes a different image from "
                              r"the model that runs \(up to \d+ grey levels on A/000\d\): the model takes another path "
                              r"while it is traced or counted$"),
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
    stages = beside.stages  # where its wall time went, every stage measured
    assert set(stages) == {"process", "load", "complexity", "quality", "warmup", "timed", "audit", "metrics",
                           "verification"}
    assert all(stages[s] > 0 for s in ("process", "complexity", "quality", "warmup", "timed", "audit", "verification"))


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


def test_an_exit_handler_does_not_hold_up_the_run_and_what_was_printed_is_logged(hostile_run):
    record = hostile_run["records"]["lingers_at_exit"]
    assert record.status == OK
    # A worker ends without the interpreter's teardown: closing one waited 10 s for a handler's sleep before its
    # group was killed, three closes a pass.
    assert record.stages["process"] < 10
    log = (hostile_run["out"] / "logs" / "lingers_at_exit.log").read_text()
    assert "lingers_at_exit: printed at import, no newline" in log


def test_a_tampered_counter_changes_no_figure_and_is_noted(hostile_run):
    cheat, honest = hostile_run["records"]["undercounts"], hostile_run["records"]["honest_residual"]
    assert cheat.status == OK and cheat.complexity.counted_by == "graph"
    figures = lambda c: (c.params, c.flops, c.activations, c.num_conv, c.flops_by_convention)  # noqa: E731
    assert figures(cheat.complexity) == figures(honest.complexity)
    assert cheat.complexity.params == 16 * 3 * 9 + 16 + 48 * 16 * 9 + 48
    (note,) = cheat.complexity.audited.notes
    # its FLOPs claim is never asked for: where a graph is counted, the worker's own FLOPs count is not made
    assert note == "the submission's own process reported params 0 (the graph: 7,408): only the graph's count is used"


def test_weights_hidden_in_buffers_are_counted_in_the_audited_figures(hostile_run):
    complexity = hostile_run["records"]["weights_as_buffers"].complexity
    assert hostile_run["records"]["weights_as_buffers"].status == OK
    assert (complexity.params, complexity.activations, complexity.num_conv) == (0, 0, 0)  # the official rules' view
    assert complexity.audited.params == 48 * 3 * 9 + 48
    assert complexity.audited.activations == 48 * 256 * 256
    # fvcore counts the functional convolution, and the nearest upscale as one per output element
    assert complexity.audited.flops == complexity.flops == 48 * 3 * 9 * 256 * 256 + 3 * 1024 * 1024
    assert [n.split(":")[0] for n in complexity.audited.notes] == ["params", "activations"]


def test_a_cheap_path_for_the_counting_input_is_audited_on_the_images_it_is_scored_on(hostile_run):
    """cheap_at_count_size takes a 1x1 path on square inputs, as the official 256x256 one is, and its real network
    on the (oblong) images it is scored on. Its trace warns of the branch, so its own count is all an official
    rule has (flagged); the audit measures a real forward on a scored image, and that is what the default
    edition scores."""
    from ntire_bench.scoring.editions import load_edition
    from ntire_bench.scoring.leaderboard import result_flags, scored_complexity

    record = hostile_run["records"]["cheap_at_count_size"]
    complexity = record.complexity
    assert record.status == OK and complexity.counted_by == "submission"
    assert complexity.fallback.startswith("its trace holds one branch of a data-dependent decision")
    # the organisers' count: the cheap path's 1x1 conv, and fvcore's one per output element of the nearest upscale
    assert complexity.flops == 48 * 3 * 256 * 256 + 3 * 1024 * 1024
    real = (16 * 3 * 9 + 48 * 16 * 9) * 256 * 256  # conv1 and conv2 per LR pixel, at 256x256
    assert complexity.audited.flops == real
    assert any(n.startswith("FLOPs: on A/") and "its cost depends on the input" in n for n in complexity.audited.notes)
    assert scored_complexity(record, load_edition("default"))[0] == real
    assert scored_complexity(record, load_edition("ntire2024"))[0] == complexity.flops
    assert any(flag.startswith("complexity counted in the submission's own process (its trace holds")
               for flag in result_flags(record, load_edition("ntire2024")))


def test_a_submission_cannot_take_more_cores_than_it_is_given(hostile_run):
    record = hostile_run["records"]["grabs_threads"]
    assert record.status == OK
    assert record.environment.cpu_affinity and len(record.environment.cpu_affinity) == 1
    assert any("raised torch's thread count to 8" in note for note in record.warnings), record.warnings
    log = (hostile_run["out"] / "logs" / "grabs_threads.log").read_text()
    assert "sched_setaffinity refused" in log, log[-500:]


def test_nondeterminism_is_measured_and_flagged_not_failed(hostile_run, tiny):
    from ntire_bench.scoring.editions import load_edition
    from ntire_bench.scoring.leaderboard import result_flags, score_results

    record = hostile_run["records"]["nondeterministic"]
    assert record.status == OK and record.nondeterministic and 2 <= record.output_spread <= 4
    assert record.datasets["A"].timing_audit.verified.endswith(f"(tolerance {2 * record.output_spread + 1:.2g})")
    (flag,) = result_flags(record, load_edition("default"))
    assert flag.startswith(f"its output varies by up to {record.output_spread} grey levels")
    assert hostile_run["records"]["tiny_net"].output_spread == 0
    strict = replace(load_edition("default"), name="strict", nondeterminism="fail", thresholds_from_results=False)
    board = score_results([record, hostile_run["records"]["tiny_net"]], strict, baseline="tiny_net")
    rows = board.table.set_index("submission")
    assert not rows.loc["nondeterministic", "eligible"]
    assert "the strict edition does not rank it" in rows.loc["nondeterministic", "reason"]
    assert rows.loc["tiny_net", "eligible"]


def test_no_honest_submission_is_flagged_and_the_audit_is_recorded(hostile_run):
    for name in ("tiny_net", "honest_residual", "patches_harness", "hr_search", "leaves_processes", "lingers_at_exit"):
        audit = hostile_run["records"][name].datasets["A"].timing_audit
        assert audit.requests == 3 + audit.retries and audit.probes_checked > 0 and audit.verified
        assert 0 < audit.claimed_ms <= audit.observed_ms
