"""Real submissions as delivered: a checkout in the official layout, imported and run end to end.

The fixture checkout (tests/support/fixtures/ntire_checkout) has tiny teams with the quirks real teams
ship: hard-coded CUDA, a missing package, sibling imports and files read next to the module,
strict=False, both data ranges, .pth/.pt/.pkl and nested weights, re-parameterisation, a
pickled whole model, an official inference wrapper, a missing checkpoint and an empty branch.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from ntire_bench.data.datasets import load_dataset_specs
from ntire_bench.runner.discovery import discover
from ntire_bench.ntire.importer import import_checkout
from ntire_bench.runner.evaluation import run_benchmark
from ntire_bench.runner.context import RunConfig, hidden_paths
from ntire_bench.data.datasets import prepare_datasets

from support.helpers import make_dataset, write_registry

from support.paths import FIXTURES

FIXTURE = FIXTURES / "ntire_checkout"
FAST = dict(device="cpu", timing="fixed", warmup=1, repeats=2, threads=1, progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    sys.path.insert(0, str(FIXTURE))
    try:
        from make_checkpoints import make_checkpoints
    finally:
        sys.path.remove(str(FIXTURE))
    copy = tmp_path_factory.mktemp("ntire") / "checkout"
    shutil.copytree(FIXTURE, copy, ignore=shutil.ignore_patterns("__pycache__", "conftest.py"))
    make_checkpoints(copy)
    return copy


@pytest.fixture(scope="module")
def teams_run(checkout, tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    report = import_checkout(checkout, work / "submissions")
    data = load_dataset_specs(write_registry(work / "datasets.yaml", {"A": make_dataset(work / "A", 2)}))["A"]
    datasets = prepare_datasets([data], progress=False)
    out = work / "results"
    entries = discover([work / "submissions"], include_entry_points=False, hidden=hidden_paths([d.spec for d in datasets], out))
    records = run_benchmark(entries, datasets, RunConfig(out_dir=out, **FAST))
    return {"work": work, "report": report, "datasets": datasets, "entries": {e.name: e for e in entries},
            "records": {r.submission: r for r in records}}


def test_every_branch_gives_a_results_file(teams_run):
    names = {d.name for d in teams_run["report"].declarations}
    assert names == set(teams_run["records"])
    assert {p.stem for p in (teams_run["work"] / "results").glob("*.json")} == names


@pytest.mark.parametrize("name, status, reason", [
    ("team00_PlainSR_baseline", "ok", None),
    ("team03_CudaSR", "failed", r"^counting complexity raised the team's code requires CUDA at team03_CudaSR.py:\d+ "
                                r"\(.*\); run it with --device cuda on a GPU machine$"),
    ("team07_MambaSR", "failed", r"needs package 'mamba_ssm', which is not installed here"),
    ("team09", "failed", r"empty|pass|no model"),
    ("team12_RepSR", "ok", None),
    ("team121_RepSR_blockwise", "ok", None),
    ("team15_AttnSR", "ok", None),
    ("team20_WholeSR", "failed", r"team20_wholesr.pth needs arbitrary unpickling.*opt in with trust_pickle: true"),
    ("team25_PlainSR_retrained", "no_weights", r"checkpoint \./model_zoo/team25_plainsr.pth not found|not found"),
])
def test_each_quirk_has_its_outcome(teams_run, name, status, reason):
    records = teams_run["records"]
    matches = [r for n, r in records.items() if n == name or n.startswith(name + "_") or (name == "team09" and
                                                                                             n.startswith("team09"))]
    assert len(matches) == 1, sorted(records)
    record = matches[0]
    assert record.status == status, (record.status, record.error)
    if reason:
        import re

        assert re.search(reason, record.error or ""), record.error
        assert "\n" not in record.error


def test_quality_equals_the_organisers_own_inference_for_each_data_range(teams_run, checkout):
    """team00 takes 0..255, team15 takes 0..1 through its official forward_team15 wrapper: the PSNR
    the harness records equals the organisers' run() on the same images, image by image."""
    import argparse
    import importlib.util

    import numpy as np
    import torch

    from ntire_bench.data.images import read_image
    from ntire_bench.metrics.quality import image_quality

    sys.path.insert(0, str(checkout))
    try:
        spec = importlib.util.spec_from_file_location("fixture_demo", checkout / "test_demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        import os

        cwd = os.getcwd()
        os.chdir(checkout)
        try:
            for model_id, name, data_range in ((0, "team00_PlainSR_baseline", 255.0), (15, "team15_AttnSR", 1.0)):
                args = argparse.Namespace(model_id=model_id)
                model, _, declared_range, tile = demo.select_model(args, torch.device("cpu"))
                assert declared_range == data_range == teams_run["records"][name].data_range
                for pair, row in zip(teams_run["datasets"][0].pairs, teams_run["records"][name].datasets["A"].images):
                    lr = torch.from_numpy(read_image(pair.lr_path)).permute(2, 0, 1)[None].float() / 255.0
                    (sr,) = demo.run(model, [lr], data_range, tile, torch.device("cpu"), args)
                    sr_u8 = torch.from_numpy(np.rint(sr[0].numpy() * 255.0).astype(np.uint8))
                    hr = torch.from_numpy(read_image(pair.hr_path)).permute(2, 0, 1)
                    assert image_quality(sr_u8, hr, border=4)["psnr"] == pytest.approx(row.psnr, abs=1e-9)
        finally:
            os.chdir(cwd)
    finally:
        sys.path.remove(str(checkout))
        for module in [m for m in sys.modules if m == "models" or m.startswith("models.")]:
            del sys.modules[module]


def test_no_weights_still_measures_runtime_and_complexity(teams_run):
    record = [r for n, r in teams_run["records"].items() if n.startswith("team25")][0]
    assert record.complexity.params > 0 and record.complexity.flops > 0
    assert record.datasets["A"].runtime_ms.mean > 0 and record.datasets["A"].psnr is None


def test_strict_false_is_a_warning_never_silent(teams_run):
    record = teams_run["records"]["team15_AttnSR"]
    assert any(w.startswith("weights loaded with strict=False as the official code does") for w in record.warnings)


def test_sibling_imports_and_files_next_to_the_module_work_inside_the_sandbox(teams_run):
    record = teams_run["records"]["team15_AttnSR"]
    assert record.status == "ok" and record.sandbox.mechanism in ("bubblewrap", "landlock")
    deps = record.plugin.dependencies
    assert any(p.endswith("models/team15_blocks.py") for p in deps) and any(p.endswith("team15_AttnSR.py") for p in deps)


def test_deploy_runs_before_counting_and_is_checked_for_equivalence(teams_run):
    fused = teams_run["records"]["team12_RepSR"]
    blockwise = teams_run["records"]["team121_RepSR_blockwise"]
    assert any(w.startswith("deployed with repa before timing and counting") for w in fused.warnings)
    assert any(w.startswith("deployed with each:switch_deploy") for w in blockwise.warnings)
    # Counted after fusing: the fused model has fewer convs than the trained one.
    assert fused.complexity.num_conv == blockwise.complexity.num_conv < 6
    assert fused.datasets["A"].psnr == pytest.approx(blockwise.datasets["A"].psnr, abs=1e-6)


def test_trusting_a_pickle_is_an_opt_in_recorded_in_the_results(teams_run, checkout, tmp_path):
    declaration = teams_run["work"] / "submissions" / "team20_WholeSR.yaml"
    edited = tmp_path / "team20_WholeSR.yaml"
    edited.write_text(declaration.read_text().replace("trust_pickle: false", "trust_pickle: true"))
    entries = discover([edited], include_entry_points=False)
    (record,) = run_benchmark(entries, teams_run["datasets"], RunConfig(out_dir=tmp_path / "r", **FAST))
    assert record.status == "ok", record.error
    assert record.opt_ins == ["trust_pickle"] and record.checkpoint.trusted_pickle


def test_a_deploy_step_that_changes_the_output_is_refused(tmp_path, teams_run):
    plugin = tmp_path / "breaks_on_deploy.py"
    plugin.write_text(
        "import torch\nfrom torch import nn\nfrom ntire_bench.plugins import Submission\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 48, 3, padding=1)\n"
        "        self.up = nn.PixelShuffle(4)\n"
        "    def forward(self, x):\n"
        "        return self.up(self.conv(x))\n"
        "    def fuse(self):\n"
        "        with torch.no_grad():\n"
        "            self.conv.weight.mul_(2)\n\n"
        "SUBMISSION = Submission(name='breaks_on_deploy', team='t', model=Net, requires_weights=False,\n"
        "                        deploy=('fuse',))\n")
    (record,) = run_benchmark(discover([plugin], include_entry_points=False), teams_run["datasets"],
                              RunConfig(out_dir=tmp_path / "r", **FAST))
    assert record.status == "failed"
    assert "deploy step fuse changed the output by up to" in record.error
    assert "the deployed model is not equivalent to the trained one" in record.error


def test_the_cli_imports_and_runs_a_checkout(checkout, tmp_path):
    out = tmp_path / "decl"
    result = subprocess.run([sys.executable, "-m", "ntire_bench.cli", "import-ntire", str(checkout), "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "team15_AttnSR" in result.stdout and (out / "IMPORT.md").is_file()
    listed = subprocess.run([sys.executable, "-m", "ntire_bench.cli", "list", str(out)], capture_output=True, text=True)
    assert listed.returncode == 1  # the empty branch is listed as broken, never dropped
    assert "team15_AttnSR" in listed.stdout and "strict=False" in listed.stdout and "own forward" in listed.stdout


def test_an_organisers_branch_that_takes_its_whole_model_from_an_absent_checkpoint_fails_naming_it(
        teams_run, checkout, tmp_path):
    """team20 runs the organisers' own branch, which unpickles its whole model: without the file there is no
    model to time, and the reason says so."""
    copy = tmp_path / "checkout"
    shutil.copytree(checkout, copy)
    (copy / "model_zoo" / "team20_wholesr.pth").unlink()
    report = import_checkout(copy, tmp_path / "decl")
    (declaration,) = [d for d in report.declarations if d.team_id == 20]
    assert declaration.build == "official-branch"
    entries = discover([tmp_path / "decl" / f"{declaration.name}.yaml"], include_entry_points=False)
    (record,) = run_benchmark(entries, teams_run["datasets"], RunConfig(out_dir=tmp_path / "r", **FAST))
    assert record.status == "failed"
    assert "team20_wholesr.pth is absent and the team's branch takes the whole model from it" in record.error


def test_an_organisers_branch_that_loads_an_absent_state_dict_still_builds_the_model():
    """The same stand-in lets a branch that does `model.load_state_dict(torch.load(path)['params'])` build its
    model when the file is absent, so it is timed and counted (no_weights)."""
    import torch
    from torch import nn

    from ntire_bench.worker.loading import LoadNotes, absent_checkpoint_loads_nothing

    def branch():
        model = nn.Conv2d(3, 3, 1)
        model.load_state_dict(torch.load("model_zoo/absent.pth")["params"], strict=True)
        return model

    notes = LoadNotes()
    with absent_checkpoint_loads_nothing("model_zoo/absent.pth", notes):
        model = branch()
    assert isinstance(model, nn.Conv2d) and notes.warnings == ["absent.pth is absent: the model keeps its initial "
                                                               "weights"]
    with pytest.raises(FileNotFoundError):
        torch.load("model_zoo/absent.pth")  # restored afterwards
