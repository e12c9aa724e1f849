"""The NTIRE 2023 networks shipped as submissions: LGVAN (team 18) and the RFDN baseline.

Each declaration loads its checkpoint strictly through the harness's own path, pinned by
sha256, and reproduces what the official 2023 code measures (shared/reference/ntire2023_lgvan.json):
params, fvcore FLOPs, activations and Conv2d calls exactly, Set5 PSNR per image to 1e-4 dB.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.paths import REPO

from ntire_bench.complexity.counting import measure_complexity
from ntire_bench.data.images import modcrop, read_image
from ntire_bench.metrics.quality import image_quality, quantize
from ntire_bench.plugins.declaration import PluginError, Submission, SubmissionInfo
from ntire_bench.runner.discovery import discover
from ntire_bench.util.hashing import sha256_file
from ntire_bench.worker.forward import ModelCall, super_resolve
from ntire_bench.worker.loading import extract_state_dict, import_plugin_file, load_weights

# submission name -> its branch in the reference file (the official 2023 model names)
REFERENCE_KEYS = {"lgvan": "18_LGVAN", "rfdn": "00_RFDN_baseline"}
PSNR_TOLERANCE_DB = 1e-4  # float32 conv arithmetic differs across CPUs by ~1e-5 dB


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> dict:
    path = shared_dir / "reference" / "ntire2023_lgvan.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return json.loads(path.read_text())["models"]


def declaration(name: str) -> tuple[SubmissionInfo, Submission]:
    """The submission as the parent reads it (statically) and as the worker imports it."""
    source = REPO / "submissions" / f"{name}.py"
    (entry,) = [e for e in discover([source], include_entry_points=False) if e.name == name]
    assert entry.ok and entry.read_by == "static", entry.error
    (submission,) = import_plugin_file(source)
    return entry.info, submission


def loaded_model(name: str, model_zoo: Path) -> tuple[SubmissionInfo, Submission, torch.nn.Module]:
    info, submission = declaration(name)
    model = submission.model()
    load_weights(model, model_zoo / info.checkpoint, expected_sha256=info.sha256,
                 state_dict_key=info.state_dict_key, strict=info.strict)
    return info, submission, model.eval()


@pytest.mark.parametrize("name", sorted(REFERENCE_KEYS))
def test_checkpoint_loads_strictly_and_is_pinned(name: str, model_zoo: Path) -> None:
    info, _submission, model = loaded_model(name, model_zoo)
    path = model_zoo / info.checkpoint
    assert info.strict
    assert info.sha256 == sha256_file(path)
    stored = extract_state_dict(torch.load(path, map_location="cpu", weights_only=True), path, info.state_dict_key)
    own = model.state_dict()
    assert set(own) == set(stored)
    assert all(torch.equal(value, stored[key]) for key, value in own.items())


def test_lgvan_takes_the_ema_weights_the_official_branch_loads(model_zoo: Path) -> None:
    info, _submission, model = loaded_model("lgvan", model_zoo)
    path = model_zoo / info.checkpoint
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert info.state_dict_key == "params_ema"
    assert set(checkpoint) == {"params", "params_ema"}
    # The two entries differ, so picking the right one matters.
    assert not torch.equal(checkpoint["params"]["conv_first.weight"], checkpoint["params_ema"]["conv_first.weight"])
    assert torch.equal(model.conv_first.weight, checkpoint["params_ema"]["conv_first.weight"])


def test_a_changed_checkpoint_is_refused_by_its_pinned_sha256(model_zoo: Path, tmp_path: Path) -> None:
    info, submission = declaration("rfdn")
    state = torch.load(model_zoo / info.checkpoint, map_location="cpu", weights_only=True)
    state["fea_conv.bias"] = state["fea_conv.bias"] + 1.0
    tampered = tmp_path / info.checkpoint
    torch.save(state, tampered)
    with pytest.raises(PluginError, match="sha256 is .*the submission declares"):
        load_weights(submission.model(), tampered, expected_sha256=info.sha256)


@pytest.mark.parametrize("name", sorted(REFERENCE_KEYS))
def test_complexity_equals_the_official_figures(name: str, reference: dict) -> None:
    expected = reference[REFERENCE_KEYS[name]]
    _info, submission = declaration(name)
    measured = measure_complexity(submission.model().eval(), input_size=(256, 256))
    assert (measured.params, measured.flops, measured.activations, measured.num_conv) == (
        expected["params"], expected["flops_fvcore"], expected["activations"], expected["num_conv"])


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("name", sorted(REFERENCE_KEYS))
def test_set5_psnr_per_image_equals_the_official_code(
    name: str, model_zoo: Path, shared_data: Path, reference: dict
) -> None:
    expected = reference[REFERENCE_KEYS[name]]
    info, submission, model = loaded_model(name, model_zoo)
    assert info.data_range == expected["data_range"]
    module = ModelCall(model, submission.forward).eval()
    psnr = {}
    for image in sorted(expected["Set5"]["psnr_per_image"]):
        lr = _chw(read_image(shared_data / "Set5" / "LR" / f"{image}x4.png"))[None].float()
        hr = _chw(modcrop(read_image(shared_data / "Set5" / "HR" / f"{image}.png"), 4))
        with torch.inference_mode():
            sr = quantize(super_resolve(submission, module, lr)[0], submission.data_range)
        psnr[image] = image_quality(sr, hr, border=4)["psnr"]
    for image, want in expected["Set5"]["psnr_per_image"].items():
        assert psnr[image] == pytest.approx(want, abs=PSNR_TOLERANCE_DB), f"{name} {image}"
    assert float(np.mean(list(psnr.values()))) == pytest.approx(expected["Set5"]["psnr_mean"], abs=PSNR_TOLERANCE_DB)
