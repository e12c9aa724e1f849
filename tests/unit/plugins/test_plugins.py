"""Plugin declarations, discovery without running plugin code in the parent, and checkpoint rules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from ntire_bench.runner.discovery import discover, select
from ntire_bench.worker.loading import extract_state_dict, load_weights
from ntire_bench.plugins.declaration import PluginError, Submission, SubmissionInfo
from ntire_bench.plugins.checkpoints import model_zoo_dirs, resolve_checkpoint
from ntire_bench.plugins.static import read_static
from ntire_bench.util.hashing import sha256_file

GOOD = textwrap.dedent(
    """
    from torch import nn
    from ntire_bench.plugins import Submission

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 48, 3, padding=1)
            self.up = nn.PixelShuffle(4)

        def forward(self, x):
            return self.up(self.conv(x))

    SUBMISSION = Submission(name="{name}", team="t", model=Net, checkpoint="{name}.pth")
    """
)
COMPUTED = GOOD.replace('SUBMISSION = Submission(name="{name}"', 'NAME = "" + "{name}"\nSUBMISSION = Submission(name=NAME')


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)


def _write(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(text)
    return path


def test_literal_declarations_are_read_without_running_the_plugin(tmp_path):
    marker = tmp_path / "ran"
    path = _write(tmp_path, "alpha.py", f"open({str(marker)!r}, 'w').close()\n" + GOOD.format(name="alpha"))
    (info,) = read_static(path)
    assert (info.name, info.checkpoint, info.data_range) == ("alpha", "alpha.pth", 1.0)
    entries = discover([tmp_path], include_entry_points=False)
    assert [(e.name, e.read_by) for e in entries] == [("alpha", "static")]
    assert not marker.exists()  # the module body never ran, in this process or any other


def test_broken_plugins_and_computed_declarations_are_read_by_sandboxed_workers(tmp_path):
    _write(tmp_path, "alpha.py", GOOD.format(name="alpha"))
    _write(tmp_path, "beta.py", COMPUTED.format(name="beta"))
    _write(tmp_path, "broken.py", "import does_not_exist_anywhere\n")
    _write(tmp_path, "empty.py", "X = 1\n")
    _write(tmp_path, "exits.py", "import os\nos._exit(3)\n")
    _write(tmp_path, "_helper.py", "raise SystemExit('helpers are not plugins')\n")
    package = tmp_path / "gamma"
    package.mkdir()
    _write(package, "__init__.py", GOOD.format(name="gamma"))
    entries = {e.name: e for e in discover([tmp_path], include_entry_points=False)}
    assert set(entries) == {"alpha", "beta", "broken", "empty", "exits", "gamma"}
    assert entries["alpha"].ok and entries["gamma"].ok and entries["beta"].ok
    assert entries["beta"].read_by == "worker" and entries["beta"].info.checkpoint == "beta.pth"
    assert entries["broken"].error == ("broken.py: import failed: needs package 'does_not_exist_anywhere', which is "
                                       "not installed here; install the challenge's requirements (pip install "
                                       "does_not_exist_anywhere) and re-run")
    assert "neither SUBMISSION nor SUBMISSIONS" in entries["empty"].error
    assert entries["exits"].error.startswith("worker process exited with code 3")
    assert all("\n" not in (e.error or "") for e in entries.values())
    assert entries["alpha"].source_sha256 == sha256_file(tmp_path / "alpha.py")


def test_two_submissions_with_one_name_are_refused_naming_both_files(tmp_path):
    _write(tmp_path, "rlfn.py", GOOD.format(name="rlfn"))
    _write(tmp_path, "rlfn_copy.py", GOOD.format(name="rlfn"))
    with pytest.raises(PluginError) as info:
        discover([tmp_path], include_entry_points=False)
    message = str(info.value)
    assert "two submissions are named 'rlfn'" in message
    assert str(tmp_path / "rlfn.py") in message and str(tmp_path / "rlfn_copy.py") in message


def test_unknown_name_suggests_the_closest(tmp_path):
    _write(tmp_path, "rlfn.py", GOOD.format(name="rlfn"))
    entries = discover([tmp_path], include_entry_points=False)
    with pytest.raises(PluginError, match="did you mean 'rlfn'"):
        select(entries, ["rlfm"])


def test_missing_location_is_an_error(tmp_path):
    with pytest.raises(PluginError, match="no such submissions directory"):
        discover([tmp_path / "nowhere"], include_entry_points=False)


def test_entry_point_plugins_are_read_in_a_worker(tmp_path, monkeypatch):
    _write(tmp_path, "team_x_plugin.py", GOOD.format(name="team_x"))
    dist = tmp_path / "team_x_plugin-1.0.dist-info"
    dist.mkdir()
    _write(dist, "METADATA", "Metadata-Version: 2.1\nName: team-x-plugin\nVersion: 1.0\n")
    _write(dist, "entry_points.txt", "[ntire_bench.submissions]\nteam_x = team_x_plugin:SUBMISSION\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    entries = [e for e in discover([], include_entry_points=True) if e.name == "team_x"]
    assert len(entries) == 1 and entries[0].ok, entries
    assert entries[0].source == "entry-point:team_x_plugin:SUBMISSION" and entries[0].read_by == "worker"
    assert "team_x_plugin" not in sys.modules  # listing never imported it here


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data_range": 2.0}, "data_range must be 1.0 or 255.0"),
        ({"scale": 2}, "only x4"),
        ({"checkpoint": None}, "declare checkpoint"),
        ({"name": "bad name!"}, "letters, digits"),
        ({"pad_to_multiple": 0}, "pad_to_multiple"),
    ],
)
def test_declaration_is_validated(kwargs, message):
    fields = {"name": "x", "team": "t", "model": Net, "checkpoint": "x.pth"} | kwargs
    with pytest.raises(PluginError, match=message):
        Submission(**fields)


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "team": "t", "checkpoint": "x.pth", "data_range": "1"}, "field data_range must be a number"),
    ({"name": "x", "team": 3}, "field team must be str"),
    ({"name": "x", "team": "t", "requires_weights": False, "sneaky": 1}, "unknown declaration field 'sneaky'"),
    ({"name": "../../etc", "team": "t", "requires_weights": False}, "letters, digits"),
])
def test_declarations_reported_by_a_worker_are_validated(data, message):
    with pytest.raises(PluginError, match=message):
        SubmissionInfo.from_dict(data, "worker")


@pytest.mark.parametrize("wrapper", [None, "params", "params_ema", "state_dict"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_usual_checkpoint_wrappers_are_accepted(tmp_path, wrapper, prefix):
    source = Net()
    state = {prefix + k: v for k, v in source.state_dict().items()}
    path = tmp_path / "w.pth"
    torch.save(state if wrapper is None else {wrapper: state, "iter": 5}, path)
    target = Net()
    load_weights(target, path)
    assert torch.equal(target.conv.weight, source.conv.weight)


def test_params_ema_is_preferred_over_params_and_a_declared_key_wins():
    ema, plain = {"w": torch.ones(1)}, {"w": torch.zeros(1)}
    assert extract_state_dict({"params": plain, "params_ema": ema}, "x")["w"].item() == 1.0
    assert extract_state_dict({"params": plain, "params_ema": ema}, "x", "params")["w"].item() == 0.0
    assert extract_state_dict({"params": plain}, "x", ["params_ema", "params"])["w"].item() == 0.0
    with pytest.raises(PluginError, match="has no 'g_ema' entry"):
        extract_state_dict({"params": plain}, "x.pth", "g_ema")


def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "extra.bias": torch.zeros(4)}, path)
    with pytest.raises(PluginError, match=r"missing keys \[conv.bias\]; unexpected keys \[extra.bias\]"):
        load_weights(Net(), path)


def test_strict_false_loads_like_the_official_branch_and_says_so(tmp_path):
    path = tmp_path / "partial.pth"
    torch.save({"conv.weight": torch.ones(4, 3, 3, 3), "extra.bias": torch.zeros(4)}, path)
    model = Net()
    notes = load_weights(model, path, strict=False)
    assert torch.equal(model.conv.weight, torch.ones(4, 3, 3, 3))
    assert notes.warnings == ["weights loaded with strict=False as the official code does (missing keys "
                              "[conv.bias]; unexpected keys [extra.bias])"]


def test_shape_mismatch_is_named(tmp_path):
    path = tmp_path / "shape.pth"
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3), "conv.bias": torch.zeros(8)}, path)
    with pytest.raises(PluginError, match=r"first conv.weight: checkpoint \(8, 3, 3, 3\)"):
        load_weights(Net(), path)


class Smuggled:
    """An arbitrary object: unpickling it would need weights_only=False."""


def test_pickled_code_is_refused_unless_the_organisers_opt_in(tmp_path):
    path = tmp_path / "evil.pth"
    model = Net()
    torch.save({**model.state_dict(), "payload": Smuggled()}, path)
    with pytest.raises(PluginError, match="evil.pth needs arbitrary unpickling .* opt in with trust_pickle: true"):
        load_weights(Net(), path)
    whole = tmp_path / "whole.pth"
    torch.save(model, whole)  # a pickled whole model
    with pytest.raises(PluginError, match="whole.pth needs arbitrary unpickling"):
        load_weights(Net(), whole)
    target = Net()
    notes = load_weights(target, whole, trust_pickle=True)
    assert torch.equal(target.conv.weight, model.conv.weight) and notes.opt_ins == ["trust_pickle"]


def test_declared_sha256_is_checked(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(Net().state_dict(), path)
    with pytest.raises(PluginError, match="sha256 is"):
        load_weights(Net(), path, expected_sha256="0" * 64)
    load_weights(Net(), path, expected_sha256=sha256_file(path))


def test_model_zoo_resolution_order(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (second / "x.pth").write_bytes(b"2")
    monkeypatch.setenv("NTIRE_BENCH_MODEL_ZOO", str(second))
    zoo = model_zoo_dirs([first])
    assert zoo == [first, second]
    assert resolve_checkpoint("x.pth", zoo) == (second / "x.pth").resolve()
    (first / "x.pth").write_bytes(b"1")
    assert resolve_checkpoint("x.pth", zoo) == (first / "x.pth").resolve()
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("x.pth", [Path("first")]).is_absolute()
    assert resolve_checkpoint("y.pth", zoo) is None
    # An NTIRE checkout's relative paths resolve against the checkout first.
    (tmp_path / "model_zoo").mkdir()
    (tmp_path / "model_zoo" / "t.pth").write_bytes(b"t")
    assert resolve_checkpoint("model_zoo/t.pth", zoo, base=tmp_path) == (tmp_path / "model_zoo" / "t.pth").resolve()
