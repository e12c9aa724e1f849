"""Real submissions as delivered: a checkout in the official layout, imported and run end to end.

The fixture checkout (tests/support/fixtures/ntire_checkout) has tiny teams with the quirks real teams
ship: hard-coded CUDA, a missing package, sibling imports and files read next to the module,
strict=False, both data ranges, .pth/.pt/.pkl and nested weights, re-parameterisation, a
pickled whole model, an official inference wrapper, a tile (the 2023 layout), a missing checkpoint,
an empty branch, a class with its own load_state_dict, a model that fuses itself on its first call,
input-dependent routing and random routing in eval mode; and its test_demo.py imports, at its top,
a package no branch needs and that is absent.
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

from support.ntire_checkout import checkout_with_checkpoints
FAST = dict(device="cpu", timing="fixed", warmup=1, repeats=2, threads=1, progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return checkout_with_checkpoints(tmp_path_factory.mktemp("ntire"))


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
    ("team08_LazyFuseSR", "ok", None),
    ("team10_MoESR", "ok", None),
    ("team18_TileSR", "ok", None),
    ("team30_FuseOnLoadSR", "ok", None),
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


def _organisers_demo(checkout):
    """The fixture's whole test_demo.py, imported as its main() would be (a stand-in for the absent package
    its utils_image imports)."""
    import importlib.util
    import types

    sys.modules["fixture_absent_package"] = types.SimpleNamespace(make_grid=None)
    try:
        spec = importlib.util.spec_from_file_location("fixture_demo", checkout / "test_demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
    finally:
        del sys.modules["fixture_absent_package"]
    return demo


def test_quality_equals_the_organisers_own_inference_for_each_data_range(teams_run, checkout):
    """team00 takes 0..255, team15 takes 0..1 through its official forward_team15 wrapper, team18 asks for
    tiles (the organisers' forward tiles it): the PSNR the harness records equals the organisers' run() on
    the same images, image by image; and team18's tiles change its PSNR, so the tile was honoured."""
    import argparse
    import os

    import numpy as np
    import torch

    from ntire_bench.data.images import read_image
    from ntire_bench.metrics.quality import image_quality

    def psnr(sr, pair):
        sr_u8 = torch.from_numpy(np.rint(sr[0].numpy() * 255.0).astype(np.uint8))
        hr = torch.from_numpy(read_image(pair.hr_path)).permute(2, 0, 1)
        return image_quality(sr_u8, hr, border=4)["psnr"]

    sys.path.insert(0, str(checkout))
    cwd = os.getcwd()
    os.chdir(checkout)
    try:
        demo = _organisers_demo(checkout)
        for model_id, name, data_range in ((0, "team00_PlainSR_baseline", 255.0), (15, "team15_AttnSR", 1.0),
                                           (18, "team18_TileSR", 1.0)):
            args = argparse.Namespace(model_id=model_id)
            model, _, declared_range, tile = demo.select_model(args, torch.device("cpu"))
            assert declared_range == data_range == teams_run["records"][name].data_range
            assert (tile is not None) is (model_id == 18)
            for pair, row in zip(teams_run["datasets"][0].pairs, teams_run["records"][name].datasets["A"].images):
                lr = torch.from_numpy(read_image(pair.lr_path)).permute(2, 0, 1)[None].float() / 255.0
                (sr,) = demo.run(model, [lr], data_range, tile, torch.device("cpu"), args)
                assert psnr(sr, pair) == pytest.approx(row.psnr, abs=1e-9)
                if tile is not None:
                    (whole,) = demo.run(model, [lr], data_range, None, torch.device("cpu"), args)
                    assert abs(psnr(whole, pair) - row.psnr) > 1e-6
    finally:
        os.chdir(cwd)
        sys.path.remove(str(checkout))
        for module in [m for m in sys.modules if m.split(".")[0] in ("models", "utils")]:
            del sys.modules[module]


def test_a_class_with_its_own_load_state_dict_is_loaded_through_it(teams_run):
    """team30 fuses in its load_state_dict override before loading the fused checkpoint strictly, with names of
    its own that start with `model.`: loaded as the official branch loads it, and said so."""
    record = teams_run["records"]["team30_FuseOnLoadSR"]
    assert record.status == "ok", record.error
    assert "weights loaded through the team's own FuseOnLoadSR.load_state_dict(), as the official code does " \
           "(strict=True: every key matched)" in record.warnings
    assert record.complexity.num_conv == 4  # head, two fused blocks, tail: the checkpoint's fused form


def test_a_tiled_team_is_counted_on_its_bare_model_as_the_official_counters_do(teams_run):
    """team18's 15-pixel tiles (overlap 1) cut a 256x256 input into 19 x 19 tiles: counted through them it makes
    19 * 19 * 2 = 722 conv calls, where the official get_model_activation(model, ...) sees 2."""
    complexity = teams_run["records"]["team18_TileSR"].complexity
    assert (complexity.num_conv, complexity.activations) == (2, (4 + 48) * 65536)


def test_params_are_those_of_the_model_as_the_branch_returns_it(teams_run):
    """team08 merges two convs into a third on its first forward call and deletes them: as select_model
    returns it, it has 112 + 144 + 16 + 144 + 1776 = 2192 parameters, after any forward pass 2032."""
    complexity = teams_run["records"]["team08_LazyFuseSR"].complexity
    assert complexity.params == 2192 and complexity.counted_by == "graph"
    assert any(n.startswith("params: 2,192 as built, 2,032 after its first forward") for n in complexity.audited.notes)


def test_figures_that_depend_on_the_input_are_counted_on_the_official_one_and_said_so(teams_run):
    """team10 routes by its input's values: on the zeros an uninitialised torch.FloatTensor holds (the official
    activation input) it takes the narrow expert, on torch.rand (fvcore's) the wide one. Its graph is traced on
    each, and both traces are counted outside its process."""
    complexity = teams_run["records"]["team10_MoESR"].complexity
    assert teams_run["records"]["team10_MoESR"].status == "ok"
    assert complexity.counted_by == "graph"
    narrow, wide = (4 + 1 + 4 + 48) * 65536, (4 + 8 + 4 + 48) * 65536
    # fvcore on the wide path: head 3x3 3->4, squeeze 1x1 4->8, expand 1x1 8->4, tail 3x3 4->48, router 4->2
    assert complexity.flops == (4 * 27 + 8 * 4 + 4 * 8 + 48 * 36) * 65536 + 4 * 2
    assert complexity.activations == narrow
    assert complexity.input_dependent == {"activations": wide}
    assert any(n.startswith(f"input-dependent: activations {narrow:,} (on torch.rand: {wide:,})")
               for n in complexity.audited.notes)


def test_a_team_that_samples_in_eval_mode_is_measured_and_flagged_not_failed(teams_run):
    """team16 draws a hard Gumbel-softmax in eval mode: its outputs differ between passes, which the organisers'
    code ranks; the spread is measured on every image once it shows, and its checks allow for it."""
    record = teams_run["records"]["team16_GumbelSR"]
    assert record.status == "ok", record.error
    assert record.nondeterministic and record.output_spread >= 2
    assert record.datasets["A"].timing_audit.verified.endswith(f"(tolerance {2 * record.output_spread + 1:.2g})")


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

    from ntire_bench.worker.build import absent_checkpoint_loads_nothing
    from ntire_bench.worker.loading import LoadNotes

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


def test_an_organisers_branch_reads_its_checkpoint_from_the_model_zoo_when_the_checkout_lacks_it(
        teams_run, checkout, tmp_path):
    """A public copy without the checkpoints: team20's own branch loads model_zoo/team20_wholesr.pth, which only
    the --model-zoo directory holds (as ../shared/ntire2024_esr holds the 2024 teams' under model_zoo/)."""
    copy, zoo = tmp_path / "checkout", tmp_path / "zoo"
    shutil.copytree(checkout, copy)
    (zoo / "model_zoo").mkdir(parents=True)
    shutil.move(copy / "model_zoo" / "team20_wholesr.pth", zoo / "model_zoo" / "team20_wholesr.pth")
    import_checkout(copy, tmp_path / "decl")
    declaration = tmp_path / "decl" / "team20_WholeSR.yaml"
    declaration.write_text(declaration.read_text().replace("trust_pickle: false", "trust_pickle: true"))
    entries = discover([declaration], include_entry_points=False)
    (record,) = run_benchmark(entries, teams_run["datasets"], RunConfig(out_dir=tmp_path / "r", model_zoo=(zoo,),
                                                                       **FAST))
    assert record.status == "ok", record.error
    found = (zoo / "model_zoo" / "team20_wholesr.pth").resolve()
    assert f"model_zoo/team20_wholesr.pth is not in the checkout: the branch loads {found}" in record.warnings


def test_complexity_equals_the_organisers_way_of_counting_it(teams_run, checkout):
    """For every fixture team that loads with its weights, params, FLOPs, activations and Conv2d calls equal what the official
    code computes on the model select_model() returns: sum of p.numel(), fvcore on torch.rand(1, 3, 256, 256),
    and Conv2d output elements and calls over one forward pass, all on the bare model (the official counters
    never call the inference wrapper). Teams 08, 10 and 16 are left out: their figures depend on when or on
    what input they are counted; so is team 18, counted through its tiles today (see the xfail tests)."""
    import argparse
    import os

    import torch
    from fvcore.nn import FlopCountAnalysis
    from torch import nn

    sys.path.insert(0, str(checkout))
    cwd = os.getcwd()
    os.chdir(checkout)
    try:
        demo = _organisers_demo(checkout)
        compared = []
        for name, record in teams_run["records"].items():
            model_id = int(name.removeprefix("team").split("_")[0])
            if record.status != "ok" or model_id in (8, 10, 16, 18):
                continue
            model, _, _, _ = demo.select_model(argparse.Namespace(model_id=model_id), torch.device("cpu"))
            params = sum(p.numel() for p in model.parameters())
            outputs = []
            hooks = [m.register_forward_hook(lambda m, i, o, seen=outputs: seen.append(o.numel()))
                     for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
            with torch.no_grad():
                model(torch.rand(1, 3, 256, 256))
            for hook in hooks:
                hook.remove()
            flops = FlopCountAnalysis(model, torch.rand(1, 3, 256, 256))
            flops.unsupported_ops_warnings(False)
            flops.uncalled_modules_warnings(False)
            got = record.complexity
            assert (got.params, got.flops, got.activations, got.num_conv) == \
                (params, int(flops.total()), sum(outputs), len(outputs)), name
            compared.append(model_id)
        assert {0, 15, 30} <= set(compared)  # the others' outcomes: test_each_quirk_has_its_outcome
    finally:
        os.chdir(cwd)
        sys.path.remove(str(checkout))
        for module in [m for m in sys.modules if m.split(".")[0] in ("models", "utils")]:
            del sys.modules[module]
