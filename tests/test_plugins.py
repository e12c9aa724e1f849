"""Plugin declaration, discovery (directories and entry points) and checkpoint loading rules."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from ntire_bench.plugins import (
    PluginError,
    Submission,
    discover,
    extract_state_dict,
    load_submission,
    load_weights,
    model_zoo_dirs,
    resolve_checkpoint,
    select,
    sha256_file,
)

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


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)


def _write(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(text)
    return path


def test_broken_plugin_does_not_stop_discovery(tmp_path):
    _write(tmp_path, "alpha.py", GOOD.format(name="alpha"))
    _write(tmp_path, "broken.py", "import does_not_exist_anywhere\n")
    _write(tmp_path, "empty.py", "X = 1\n")
    _write(tmp_path, "_helper.py", "raise SystemExit('helpers are not plugins')\n")
    package = tmp_path / "gamma"
    package.mkdir()
    _write(package, "__init__.py", GOOD.format(name="gamma"))
    entries = {e.name: e for e in discover([tmp_path], include_entry_points=False)}
    assert set(entries) == {"alpha", "broken", "empty", "gamma"}
    assert entries["alpha"].ok and entries["gamma"].ok
    assert "ModuleNotFoundError" in entries["broken"].error and "broken.py" in entries["broken"].error
    assert "neither SUBMISSION nor SUBMISSIONS" in entries["empty"].error
    assert all("\n" not in (e.error or "") for e in entries.values())
    assert entries["alpha"].source_sha256 == sha256_file(tmp_path / "alpha.py")


def test_duplicate_names_are_flagged(tmp_path):
    _write(tmp_path, "a.py", GOOD.format(name="same"))
    _write(tmp_path, "b.py", GOOD.format(name="same"))
    entries = discover([tmp_path], include_entry_points=False)
    assert [e.ok for e in entries] == [True, False]
    assert "duplicate submission name 'same'" in entries[1].error


def test_unknown_name_suggests_the_closest(tmp_path):
    _write(tmp_path, "rlfn.py", GOOD.format(name="rlfn"))
    entries = discover([tmp_path], include_entry_points=False)
    with pytest.raises(PluginError, match="did you mean 'rlfn'"):
        select(entries, ["rlfm"])


def test_missing_location_is_an_error(tmp_path):
    with pytest.raises(PluginError, match="no such submissions directory"):
        discover([tmp_path / "nowhere"], include_entry_points=False)


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    _write(tmp_path, "team_x_plugin.py", GOOD.format(name="team_x"))
    dist = tmp_path / "team_x_plugin-1.0.dist-info"
    dist.mkdir()
    _write(dist, "METADATA", "Metadata-Version: 2.1\nName: team-x-plugin\nVersion: 1.0\n")
    _write(dist, "entry_points.txt", "[ntire_bench.submissions]\nteam_x = team_x_plugin:SUBMISSION\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = [e for e in discover([], include_entry_points=True) if e.name == "team_x"]
    assert len(entries) == 1 and entries[0].ok
    assert entries[0].source == "entry-point:team_x_plugin:SUBMISSION"
    assert load_submission(entries[0].source, "team_x").name == "team_x"
    sys.modules.pop("team_x_plugin", None)


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


def test_params_ema_is_preferred_over_params():
    ema, plain = {"w": torch.ones(1)}, {"w": torch.zeros(1)}
    assert extract_state_dict({"params": plain, "params_ema": ema}, "x")["w"].item() == 1.0


def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "extra.bias": torch.zeros(4)}, path)
    with pytest.raises(PluginError, match=r"missing keys \[conv.bias\]; unexpected keys \[extra.bias\]"):
        load_weights(Net(), path)


def test_shape_mismatch_is_named(tmp_path):
    path = tmp_path / "shape.pth"
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3), "conv.bias": torch.zeros(8)}, path)
    with pytest.raises(PluginError, match=r"first conv.weight: checkpoint \(8, 3, 3, 3\)"):
        load_weights(Net(), path)


class Smuggled:
    """An arbitrary object: unpickling it would need weights_only=False."""


def test_pickled_code_is_refused_and_never_retried_unsafely(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "payload": Smuggled()}, path)
    with pytest.raises(PluginError, match="cannot be loaded with weights_only=True"):
        load_weights(Net(), path)


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
    sub = Submission(name="x", team="t", model=Net, checkpoint="x.pth")
    assert resolve_checkpoint(sub, zoo) == (second / "x.pth").resolve()
    (first / "x.pth").write_bytes(b"1")
    assert resolve_checkpoint(sub, zoo) == (first / "x.pth").resolve()
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint(sub, [Path("first")]).is_absolute()
    assert resolve_checkpoint(Submission(name="y", team="t", model=Net, checkpoint="y.pth"), zoo) is None
