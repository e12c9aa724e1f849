"""Golden Set5 results: each official checkpoint reproduces the official per-image PSNR/SSIM.

Pipeline (as the official evaluation): LR png -> float tensor scaled by data_range/255
-> model -> quantize(data_range) -> compare with modcrop(HR, 4), 4-pixel border.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ntire_bench.archs.efdn import EFDN
from ntire_bench.archs.rlfn import RLFN
from ntire_bench.archs.span import SPAN
from ntire_bench.data.images import modcrop, read_image
from ntire_bench.metrics.quality import image_quality, quantize
from ntire_bench.worker.loading import load_weights

MODELS = {"rlfn": RLFN, "span": SPAN, "efdn": EFDN}
PSNR_TOL = 1e-3
SSIM_TOL = 5e-4


def _to_chw_u8(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_set5_matches_official_figures(name: str, model_zoo: Path, shared_data: Path, set5_reference: dict) -> None:
    ref = set5_reference["models"][name]
    data_range = ref["data_range"]
    model = MODELS[name]().eval()
    load_weights(model, model_zoo / ref["checkpoint"])
    for expected in ref["Set5"]["images"]:
        lr = read_image(shared_data / "Set5" / "LR" / f"{expected['name']}x4.png")
        hr = modcrop(read_image(shared_data / "Set5" / "HR" / f"{expected['name']}.png"), 4)
        x = _to_chw_u8(lr)[None].float() * (data_range / 255.0)
        with torch.inference_mode():
            sr = quantize(model(x)[0], data_range)
        got = image_quality(sr, _to_chw_u8(hr), border=4)
        where = f"{name} {expected['name']}"
        assert got["psnr"] == pytest.approx(expected["psnr"], abs=PSNR_TOL), where
        assert got["psnr_y"] == pytest.approx(expected["psnr_y"], abs=PSNR_TOL), where
        assert got["ssim"] == pytest.approx(expected["ssim"], abs=SSIM_TOL), where
        assert got["ssim_y"] == pytest.approx(expected["ssim_y"], abs=SSIM_TOL), where
