"""The bicubic path end to end against the official figures in ../shared/reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ntire_bench.archs.bicubic import Bicubic
from ntire_bench.data.images import check_pair, modcrop, read_image
from ntire_bench.data.imresize import downscale_uint8
from ntire_bench.metrics.quality import image_quality, mean_quality, quantize

SCALE = 4
PSNR_TOL = 1e-3  # dB
SSIM_TOL = 5e-4


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


def _bicubic_quality(model: Bicubic, lr: np.ndarray, hr: np.ndarray) -> dict[str, float]:
    """The harness's path: float 0..255 LR -> model -> quantize -> metrics against modcropped HR."""
    with torch.no_grad():
        sr = model(_chw(lr).float().unsqueeze(0))[0]
    return image_quality(quantize(sr, 255.0), _chw(modcrop(hr, SCALE)), border=SCALE)


def _pairs(shared_data: Path, name: str) -> list[tuple[str, Path, Path]]:
    hr_dir = shared_data / name / "HR"
    if not hr_dir.is_dir():
        pytest.skip(f"{hr_dir} is missing")
    return [(p.stem, p, shared_data / name / "LR" / f"{p.stem}x{SCALE}.png") for p in sorted(hr_dir.glob("*.png"))]


@pytest.fixture(scope="module")
def set5_bicubic(shared_data: Path) -> dict[str, dict[str, float]]:
    model = Bicubic()
    out = {}
    for name, hr_path, lr_path in _pairs(shared_data, "Set5"):
        lr, hr = read_image(lr_path), read_image(hr_path)
        check_pair(lr, hr, SCALE, lr_path, hr_path)
        out[name] = _bicubic_quality(model, lr, hr)
    return out


def test_set5_per_image_matches_official(set5_bicubic: dict, set5_reference: dict) -> None:
    ref = set5_reference["models"]["bicubic"]["Set5"]
    assert [r["name"] for r in ref["images"]] == sorted(set5_bicubic)
    deviations = {key: 0.0 for key in ("psnr", "psnr_y", "ssim", "ssim_y")}
    for r in ref["images"]:
        got = set5_bicubic[r["name"]]
        for key in deviations:
            deviations[key] = max(deviations[key], abs(got[key] - r[key]))
    assert deviations["psnr"] <= PSNR_TOL and deviations["psnr_y"] <= PSNR_TOL, deviations
    assert deviations["ssim"] <= SSIM_TOL and deviations["ssim_y"] <= SSIM_TOL, deviations


def test_set5_mean_matches_official(set5_bicubic: dict, set5_reference: dict) -> None:
    want = set5_reference["models"]["bicubic"]["Set5"]["mean"]
    got = mean_quality(set5_bicubic.values())
    for key in ("psnr", "psnr_y"):
        assert got[key] == pytest.approx(want[key], abs=PSNR_TOL), key
    for key in ("ssim", "ssim_y"):
        assert got[key] == pytest.approx(want[key], abs=SSIM_TOL), key


def test_set5_from_generated_lr(shared_data: Path) -> None:
    """HR -> downscale_uint8 -> bicubic x4: the path used when a set ships without LR."""
    model = Bicubic()
    rows = []
    for _, hr_path, _ in _pairs(shared_data, "Set5"):
        hr = modcrop(read_image(hr_path), SCALE)
        rows.append(_bicubic_quality(model, downscale_uint8(hr, SCALE), hr))
    assert mean_quality(rows)["psnr_y"] == pytest.approx(28.42, abs=0.01)


def test_b100_mean_psnr_y(shared_data: Path) -> None:
    model = Bicubic()
    rows = []
    pairs = _pairs(shared_data, "B100")
    for _, hr_path, lr_path in pairs:
        rows.append(_bicubic_quality(model, read_image(lr_path), read_image(hr_path)))
    assert len(rows) == 100
    assert mean_quality(rows)["psnr_y"] == pytest.approx(25.96, abs=0.01)


def test_bicubic_model_shapes_and_no_parameters() -> None:
    model = Bicubic()
    assert list(model.parameters()) == [] and list(model.buffers()) == []
    x = torch.rand(2, 3, 7, 5) * 255
    assert model(x).shape == (2, 3, 28, 20)
    torch.testing.assert_close(model(x)[1], model(x[1:2])[0])


def test_submission_declaration(repo_root: Path) -> None:
    from ntire_bench.worker.loading import import_plugin_file

    (sub,) = import_plugin_file(repo_root / "submissions" / "bicubic.py")
    assert sub.name == "bicubic" and sub.reference and not sub.requires_weights
    assert sub.checkpoint is None and sub.data_range == 255.0 and sub.scale == SCALE
    model = sub.model()
    assert isinstance(model, Bicubic) and sum(p.numel() for p in model.parameters()) == 0
