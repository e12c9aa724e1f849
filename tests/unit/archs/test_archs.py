"""Architectures: reference complexity, strict loading, paper parameter counts, the documented summary table,
odd sizes, discovery."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

from ntire_bench.archs.dlgsanet import dlgsanet_light, dlgsanet_tiny
from ntire_bench.archs.edsr_ggas import EDSR, edsr_baseline, edsr_baseline_ggas_cwss
from ntire_bench.archs.efdn import EFDN
from ntire_bench.archs.glanet import GLANet, glanet_small
from ntire_bench.archs.rlfn import RLFN
from ntire_bench.archs.span import SPAN
from ntire_bench.runner.discovery import discover
from ntire_bench.worker.loading import extract_state_dict, import_plugin_file, load_weights
from ntire_bench.plugins.declaration import PluginError

REFERENCE_MODELS: dict[str, Callable[[], nn.Module]] = {"rlfn": RLFN, "span": SPAN, "efdn": EFDN}

# Submissions declared by this project's architecture files (submissions/ may hold others).
OWN_SUBMISSIONS = {
    "rlfn", "span", "efdn", "rfdn", "lgvan", "dlgsanet_tiny", "dlgsanet_light", "edsr_baseline", "edsr_ggas", "glanet",
}


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- the three official networks -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_reference_complexity_is_exact(name: str, set5_reference: dict) -> None:
    from ntire_bench.complexity.counting import measure_complexity

    ref = set5_reference["models"][name]
    measured = measure_complexity(REFERENCE_MODELS[name]().eval(), input_size=(256, 256))
    assert measured.params == ref["params"]
    assert measured.flops == ref["flops"]
    assert measured.activations == ref["activations"]
    assert measured.num_conv == ref["num_conv"]


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_module_names_match_checkpoint_key_list(name: str, shared_dir: Path, set5_reference: dict) -> None:
    stem = Path(set5_reference["models"][name]["checkpoint"]).stem
    listing = shared_dir / "reference" / "checkpoint_keys" / f"{stem}.txt"
    expected = {}
    for line in listing.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, _dtype = line.split("\t")
        expected[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    state = REFERENCE_MODELS[name]().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_checkpoint_loads_strictly(name: str, model_zoo: Path, set5_reference: dict) -> None:
    path = model_zoo / set5_reference["models"][name]["checkpoint"]
    model = REFERENCE_MODELS[name]()
    load_weights(model, path)
    state = extract_state_dict(torch.load(path, map_location="cpu", weights_only=True), path)
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())


@pytest.mark.parametrize(
    ("name", "wrong_checkpoint", "missing", "unexpected"),
    [
        ("rlfn", "ntire2024_span_ch28.pth", "block_1.c1_r.weight", "block_1.c1_r.eval_conv.weight"),
        ("efdn", "ntire2024_rlfn_baseline.pth", "cells.0.att.conv1.weight", "block_1.c1_r.weight"),
        ("span", "ntire2025_efdn_baseline.pth", "block_1.c1_r.eval_conv.bias", "cells.0.att.conv1.bias"),
    ],
)
def test_wrong_checkpoint_names_missing_and_unexpected_keys(
    name: str, wrong_checkpoint: str, missing: str, unexpected: str, model_zoo: Path
) -> None:
    with pytest.raises(PluginError) as info:
        load_weights(REFERENCE_MODELS[name](), model_zoo / wrong_checkpoint)
    message = str(info.value)
    assert "missing keys" in message and "unexpected keys" in message
    assert missing in message.split("unexpected keys")[0]
    assert unexpected in message.split("unexpected keys")[1]


# --- paper architectures: parameter counts against the papers --------------------------

PAPER_PARAMS = [
    # factory, reported params, relative tolerance
    pytest.param(dlgsanet_tiny, 572_000, 0.05, id="dlgsanet_tiny"),
    pytest.param(dlgsanet_light, 752_000, 0.05, id="dlgsanet_light"),
    pytest.param(edsr_baseline, 1_518_000, 0.01, id="edsr_baseline"),
    pytest.param(lambda: EDSR(ggas=True), 1_525_000, 0.01, id="edsr_ggas"),
    pytest.param(edsr_baseline_ggas_cwss, 1_525_000, 0.01, id="edsr_ggas_cwss"),
]


@pytest.mark.parametrize(("factory", "reported", "tolerance"), PAPER_PARAMS)
def test_paper_parameter_count(factory: Callable[[], nn.Module], reported: int, tolerance: float) -> None:
    count = params(factory())
    assert abs(count - reported) <= tolerance * reported, f"{count} params vs {reported} reported"


# Exact counts as documented in docs/architectures.md (regression guard for the docs).
DOCUMENTED_PARAMS = {
    "dlgsanet_tiny": (dlgsanet_tiny, 569_832),
    "dlgsanet_light": (dlgsanet_light, 745_488),
    "edsr_baseline": (edsr_baseline, 1_517_571),
    "edsr_ggas": (lambda: EDSR(ggas=True), 1_525_059),
    "edsr_ggas_cwss": (edsr_baseline_ggas_cwss, 1_526_083),
    "glanet": (glanet_small, 133_560),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED_PARAMS))
def test_documented_parameter_count(name: str) -> None:
    factory, count = DOCUMENTED_PARAMS[name]
    assert params(factory()) == count


# fvcore counts of these networks are linear in the number of input pixels (every
# counted op is a per-pixel conv/linear/norm or a window/channel attention whose cost
# grows with the pixel count), so a small input times the pixel ratio gives the exact
# figure at the documented size without the cost of tracing it.
DOCUMENTED_FLOPS = [
    # factory, documented input (H, W), documented fvcore FLOPs, small input (H, W)
    pytest.param(dlgsanet_tiny, (180, 320), 34_556_767_200, (18, 32), id="dlgsanet_tiny"),
    pytest.param(dlgsanet_light, (180, 320), 45_254_544_000, (18, 32), id="dlgsanet_light"),
    pytest.param(edsr_baseline, (256, 256), 129_978_925_056, (32, 32), id="edsr_baseline"),
    pytest.param(edsr_baseline_ggas_cwss, (256, 256), 130_461_270_016, (32, 32), id="edsr_ggas_cwss"),
    pytest.param(glanet_small, (256, 256), 9_955_180_544, (32, 32), id="glanet"),
]


@pytest.mark.parametrize(("factory", "size", "flops", "small"), DOCUMENTED_FLOPS)
def test_documented_fvcore_flops(
    factory: Callable[[], nn.Module], size: tuple[int, int], flops: int, small: tuple[int, int]
) -> None:
    from ntire_bench.complexity.counting import count_flops

    ratio = (size[0] * size[1]) // (small[0] * small[1])
    assert ratio * small[0] * small[1] == size[0] * size[1]
    measured, _unsupported = count_flops(factory().eval(), small)
    assert measured * ratio == flops


# --- every network on an odd LR size, through the harness's input contract -------------


def _own_entries(repo_root: Path) -> dict:
    entries = discover([repo_root / "submissions"], include_entry_points=False)
    return {e.name: e for e in entries if e.name in OWN_SUBMISSIONS}


# --- docs/architectures.md: the summary table against the shipped declarations ---------


def _documented_summary(repo_root: Path) -> dict[str, dict]:
    """The rows of the summary table: submission -> data range, params, FLOPs, activations, convs."""
    text = (repo_root / "docs" / "architectures.md").read_text()
    table = text.split("## Summary", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines():
        match = re.match(r"^\| `(\w+)` \| 0\.\.(1|255) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| (\d+) \|", line)
        if match:
            name, data_range, *counts = match.groups()
            params, flops, activations, convs = (int(c.replace(",", "")) for c in counts)
            rows[name] = {"data_range": float(data_range), "params": params, "flops": flops,
                          "activations": activations, "num_conv": convs}
    return rows


def test_summary_table_lists_every_shipped_submission_with_its_parameters(repo_root: Path) -> None:
    documented = _documented_summary(repo_root)
    assert set(documented) == OWN_SUBMISSIONS
    for name, entry in _own_entries(repo_root).items():
        (submission,) = [s for s in import_plugin_file(Path(entry.source)) if s.name == name]
        assert documented[name]["data_range"] == entry.info.data_range, name
        assert documented[name]["params"] == params(submission.model()), name


def test_summary_table_gives_the_official_figures_of_the_reference_networks(
    repo_root: Path, shared_dir: Path, set5_reference: dict
) -> None:
    # The measurement itself is checked against the same files by test_reference_complexity_is_exact
    # and tests/unit/archs/test_ntire2023_networks.py.
    documented = _documented_summary(repo_root)
    official = {name: set5_reference["models"][name] for name in REFERENCE_MODELS}
    ntire2023 = json.loads((shared_dir / "reference" / "ntire2023_lgvan.json").read_text())["models"]
    for name, key in (("lgvan", "18_LGVAN"), ("rfdn", "00_RFDN_baseline")):
        official[name] = {**ntire2023[key], "flops": ntire2023[key]["flops_fvcore"]}
    for name, figures in official.items():
        row = documented[name]
        assert [row[k] for k in ("params", "flops", "activations", "num_conv")] == [
            figures[k] for k in ("params", "flops", "activations", "num_conv")], name


def test_every_submission_is_discoverable(repo_root: Path) -> None:
    entries = discover([repo_root / "submissions"], include_entry_points=False)
    by_name = {e.name: e for e in entries}
    assert OWN_SUBMISSIONS <= set(by_name), f"missing: {sorted(OWN_SUBMISSIONS - set(by_name))}"
    broken = {e.name: e.error for e in entries if not e.ok}
    assert not broken, broken
    assert by_name["glanet"].info.pad_to_multiple == 8
    assert by_name["dlgsanet_tiny"].info.checkpoint == "dlgsanet_tiny_x4.pth"
    assert {e.read_by for e in entries} == {"static"}  # every shipped declaration is read without running it


@pytest.mark.parametrize("name", sorted(OWN_SUBMISSIONS))
def test_odd_input_gives_exact_x4_output(name: str, repo_root: Path) -> None:
    from ntire_bench.worker.forward import ModelCall, super_resolve

    entry = _own_entries(repo_root)[name]
    (submission,) = [s for s in import_plugin_file(Path(entry.source)) if s.name == name]
    torch.manual_seed(0)
    module = ModelCall(submission.model(), submission.forward).eval()
    x = torch.rand(1, 3, 57, 86) * 255.0  # an LR image as the worker holds it
    with torch.inference_mode():
        out = super_resolve(submission, module, x)
    assert out.shape == (1, 3, 57 * 4, 86 * 4)
    assert torch.isfinite(out).all()


def test_window_model_refuses_unpadded_input_and_pads_by_reflection() -> None:
    model = glanet_small().eval()
    x = torch.rand(1, 3, 57, 86)
    with pytest.raises(AssertionError, match="multiples of 8"):
        model(x)
    padded = torch.nn.functional.pad(x, (0, (-86) % 8, 0, (-57) % 8), mode="reflect")
    with torch.inference_mode():
        out = model(padded)[..., : 57 * 4, : 86 * 4]
    assert out.shape == (1, 3, 228, 344)


def test_shifted_windows_do_not_mix_across_the_roll() -> None:
    # After the cyclic roll, the image's top-left 2x2 corner shares the bottom-right window
    # with tokens from the other three corners. The mask must keep it to itself: changing
    # the corner may change only the corner.
    torch.manual_seed(0)
    model = GLANet(dim=16, num_blocks=1, depth=2, window_size=4, heads=2).eval()
    layer = model.blocks[0].layers[1].global_path
    assert layer.shift == 2
    x = torch.rand(1, 16, 8, 12)
    x2 = x.clone()
    x2[..., :2, :2] = 0.0
    with torch.no_grad():
        changed = (layer(x2) - layer(x)).abs().amax(dim=1)[0] > 1e-6
    assert changed[:2, :2].all()
    changed[:2, :2] = False
    assert not changed.any(), changed.nonzero().tolist()
