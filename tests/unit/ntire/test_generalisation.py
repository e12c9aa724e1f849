"""What other years' checkouts and forks do differently: a class with its own load_state_dict, names of its own
that start with `module.`, a model that fuses itself on its first call, routing by input values, random
routing in eval mode, a checkpoint under another name, and several single-team checkouts (each with the
baseline) imported into one folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support.ntire_checkout import FIXTURE, checkout_with_checkpoints, fixture_tools
from torch import nn

from ntire_bench.ntire.declaration import DeclarationError, read_declaration
from ntire_bench.ntire.importer import import_checkout, parse_checkout
from ntire_bench.plugins.declaration import PluginError
from ntire_bench.worker.loading import LoadNotes, apply_state_dict, load_weights

TOOLS = fixture_tools()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    return checkout_with_checkpoints(tmp_path_factory.mktemp("ntire"))


# ------------------------------------------------------------------ weights


class FusesOnLoad(nn.Module):
    """Trains with two convs, deploys with one: its load_state_dict fuses first (as team 30 does)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.fused = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1), None

    def load_state_dict(self, state_dict, strict=True):
        if self.fused is None:
            self.fused = nn.Conv2d(3, 3, 1)
            del self.a, self.b
        return super().load_state_dict(state_dict, strict)


def test_a_class_with_its_own_load_state_dict_is_loaded_through_it(tmp_path):
    fused = {"fused.weight": torch.full((3, 3, 1, 1), 0.5), "fused.bias": torch.zeros(3)}
    model, notes = FusesOnLoad(), LoadNotes()
    apply_state_dict(model, fused, True, tmp_path / "w.pth", notes)
    assert torch.equal(model.fused.weight, fused["fused.weight"])
    assert notes.warnings == [("weights loaded through the team's own FusesOnLoad.load_state_dict(), as the official "
                               "code does (strict=True: every key matched)")]


def test_the_teams_own_loader_failing_is_one_line_naming_it(tmp_path):
    with pytest.raises(PluginError) as raised:
        apply_state_dict(FusesOnLoad(), {"fused.weight": torch.zeros(3, 3, 1, 1)}, True, tmp_path / "w.pth", LoadNotes())
    message = str(raised.value)
    assert message.startswith("w.pth does not load into the model: the team's own FusesOnLoad.load_state_dict() "
                              "raised Error(s) in loading state_dict for FusesOnLoad: Missing key(s) in state_dict: "
                              '"fused.bias"')
    assert "\n" not in message


class Wrapped(nn.Module):
    """A network whose own names start with `module.` (it keeps its body as self.module)."""

    def __init__(self):
        super().__init__()
        self.module = nn.Conv2d(3, 4, 3)


def test_names_the_team_uses_are_never_rewritten_and_a_parallel_prefix_still_is(tmp_path):
    source = Wrapped()
    path = tmp_path / "own.pth"
    torch.save(source.state_dict(), path)  # module.weight, module.bias: the team's own names
    target = Wrapped()
    load_weights(target, path)
    assert torch.equal(target.module.weight, source.module.weight)

    parallel = tmp_path / "parallel.pth"  # a DataParallel save of a plain network: module.weight, module.bias
    torch.save({f"module.{k}": v for k, v in nn.Conv2d(3, 4, 3).state_dict().items()}, parallel)
    plain = nn.Conv2d(3, 4, 3)
    load_weights(plain, parallel)
    assert torch.equal(plain.weight, torch.load(parallel)["module.weight"])


# ------------------------------------------------------------------ the fixture teams' quirks


def _select(checkout: Path, model_id: int):
    import argparse
    import os

    from ntire_bench.ntire.slicing import load_sliced

    select = load_sliced(checkout / "test_demo.py", ["select_model"], f"ntire_generalisation_demo_{model_id}")
    cwd = os.getcwd()
    os.chdir(checkout)
    try:
        return select.select_model(argparse.Namespace(model_id=model_id), torch.device("cpu"))[0]
    finally:
        os.chdir(cwd)
        sys.modules.pop(f"ntire_generalisation_demo_{model_id}", None)


def _conv_outputs(model: nn.Module, x: torch.Tensor) -> int:
    total = []
    handles = [m.register_forward_hook(lambda m, i, o: total.append(o.numel())) for m in model.modules()
               if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return sum(total)


def test_the_fixture_teams_of_other_years_have_their_quirks(checkout):
    with TOOLS.checkout_importable(checkout):
        # Team 08 merges two convs into a third on its first call and deletes them: 112 + 144 + 16 + 144 + 1776
        # parameters as built, 2032 after any forward pass.
        lazy = _select(checkout, 8)
        assert sum(p.numel() for p in lazy.parameters()) == 2192
        lazy(torch.rand(1, 3, 8, 8))
        assert sum(p.numel() for p in lazy.parameters()) == 2032

        # Team 10 runs one expert, picked from the input's mean: conv outputs over 256x256 are 4 + 1 + 4 + 48
        # channels for a dark input, 4 + 8 + 4 + 48 for a bright one.
        moe = _select(checkout, 10)
        assert _conv_outputs(moe, torch.zeros(1, 3, 256, 256)) == 57 * 65536
        assert _conv_outputs(moe, torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))) == 64 * 65536

        # Team 16 picks its mixers at random in eval mode: two passes over one image differ, by a few grey levels.
        gumbel, x = _select(checkout, 16), torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            passes = [(gumbel(x).clamp(0, 1) * 255).round() for _ in range(4)]
        spread = max(float((p - passes[0]).abs().max()) for p in passes)
        assert 1 <= spread <= 8

        # Team 30's checkpoint holds fused names only: a plain strict load into the model as built fails.
        fuse_on_load = _select(checkout, 30)
        assert all(".fused." in k or not k.startswith("model.blocks") for k in fuse_on_load.state_dict())
        unfused = type(fuse_on_load)()
        with pytest.raises(RuntimeError, match="model.blocks.0.conv3.weight"):
            nn.Module.load_state_dict(unfused, torch.load(checkout / "model_zoo/team30_fuseonloadsr.pth"))


# ------------------------------------------------------------------ the importer


def test_a_checkpoint_under_another_name_and_modules_beside_the_team_file(tmp_path):
    """The branch loads team05_net.pth, the team sent Team05_net.pt; its file imports a sibling module after
    putting its own folder on sys.path, and only that sibling needs a package that is absent."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "team05_Net.py").write_text(
        "import os\nimport sys\n\nsys.path.append(os.path.dirname(__file__))\nfrom team05_blocks import Block\n"
        "from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n")
    (tmp_path / "models" / "team05_blocks.py").write_text("import ntire_absent_package_for_blocks\n\n\nBlock = 1\n")
    (tmp_path / "model_zoo").mkdir()
    (tmp_path / "model_zoo" / "Team05_net.pt").write_bytes(b"")
    (tmp_path / "model_zoo" / "team50_other.pth").write_bytes(b"")
    (tmp_path / "test_demo.py").write_text(
        "import torch\n\n\ndef select_model(args, device):\n    model_id = args.model_id\n"
        "    if model_id == 5:\n        from models.team05_Net import Net\n"
        "        name, data_range = '05_Net', 1.0\n        model = Net()\n"
        "        model.load_state_dict(torch.load('model_zoo/team05_net.pth'), strict=True)\n"
        "    return model, name, data_range, None\n")
    (declaration,), _ = parse_checkout(tmp_path)
    assert declaration.checkpoint_present is False
    assert declaration.notes == [
        "checkpoint model_zoo/team05_net.pth is not in the checkout",
        "model_zoo/Team05_net.pt is there: if it is this team's, set checkpoint: model_zoo/Team05_net.pt",
        "models/team05_blocks.py imports ntire_absent_package_for_blocks, which is not installed here",
    ]


def _single_team_checkout(root: Path, team_id: int) -> Path:
    """A 2023-style team checkout: the baseline's branch (with the baseline's files) and the team's own."""
    root.mkdir()
    shutil.copytree(FIXTURE / "models", root / "models", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "test_demo.py").write_text(
        "import os\nimport torch\n\n\ndef select_model(args, device):\n    model_id = args.model_id\n"
        "    if model_id == 0:\n        from models.team00_PlainSR import PlainSR\n"
        "        name, data_range = f'{model_id:02}_PlainSR_baseline', 255.0\n"
        "        model = PlainSR(num_feat=4)\n"
        "        model.load_state_dict(torch.load(os.path.join('model_zoo', 'team00_plainsr.pth')), strict=True)\n"
        f"    elif model_id == {team_id}:\n        from models.team12_RepSR import RepSR\n"
        f"        name, data_range = f'{{model_id:02}}_RepSR', 1.0\n        model = RepSR()\n"
        f"        model.load_state_dict(torch.load('model_zoo/team{team_id}.pth')['params'], strict=True)\n"
        "    tile = None\n    return model, name, data_range, tile\n")
    return root.resolve()


def test_single_team_checkouts_share_one_folder_and_the_baseline_is_kept_once(tmp_path):
    first, second = _single_team_checkout(tmp_path / "a", 18), _single_team_checkout(tmp_path / "b", 21)
    out = tmp_path / "challenge"
    import_checkout(first, out)
    baseline = out / "team00_PlainSR_baseline.yaml"
    with pytest.raises(DeclarationError) as raised:
        import_checkout(second, out)
    assert str(raised.value) == (
        f"{baseline}: already declares team00_PlainSR_baseline from {first}/test_demo.py, and {second}/test_demo.py "
        "declares it too (model_id 0); pass --keep-existing to keep the one there, or --overwrite to replace it")
    assert not (out / "team21_RepSR.yaml").exists()  # nothing written before the error

    report = import_checkout(second, out, keep_existing=True)
    assert report.kept_from_other == [(baseline, f"{first}/test_demo.py")]
    assert read_declaration(baseline).checkout == str(first)
    assert sorted(p.name for p in out.glob("*.yaml")) == ["team00_PlainSR_baseline.yaml", "team18_RepSR.yaml",
                                                          "team21_RepSR.yaml"]
    assert f"Kept as imported from another checkout: team00_PlainSR_baseline.yaml ({first}/test_demo.py)." \
        in report.summary.read_text()

    import_checkout(second, out, overwrite=True)
    assert read_declaration(baseline).checkout == str(second)


def test_the_cli_names_both_files_of_a_collision_on_one_line(tmp_path):
    first, second = _single_team_checkout(tmp_path / "a", 18), _single_team_checkout(tmp_path / "b", 21)
    cli = [sys.executable, "-m", "ntire_bench.cli", "import-ntire"]
    out = tmp_path / "challenge"
    assert subprocess.run([*cli, str(first), "--out", str(out)], check=False, capture_output=True).returncode == 0
    failed = subprocess.run([*cli, str(second), "--out", str(out)], check=False, capture_output=True, text=True)
    assert failed.returncode != 0
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{first}/test_demo.py" in lines[0] and f"{second}/test_demo.py" in lines[0]
    assert re.search(r"--keep-existing .* --overwrite", lines[0])
    kept = subprocess.run([*cli, str(second), "--out", str(out), "--keep-existing"], check=False, capture_output=True,
                          text=True)
    assert kept.returncode == 0, kept.stderr
    assert f"kept {out / 'team00_PlainSR_baseline.yaml'} (imported from {first}/test_demo.py" in kept.stderr
