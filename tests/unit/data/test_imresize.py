"""MATLAB-compatible imresize against a loop-by-loop reference written from MATLAB's algorithm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ntire_bench.data.images import modcrop, read_image
from ntire_bench.data.imresize import downscale_uint8, imresize


# ---- an independent, deliberately plain reference -------------------------------------


def _cubic(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def _ref_matrix(n_in: int, n_out: int, scale: float, antialias: bool, padding: str) -> np.ndarray:
    """(n_out, n_in) matrix of MATLAB's contributions, built one output sample at a time."""
    m = np.zeros((n_out, n_in))
    shrink = scale < 1 and antialias
    width = 4.0 / scale if shrink else 4.0
    for i in range(n_out):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale)  # MATLAB's 1-based input coordinate
        left = math.floor(u - width / 2)
        taps = range(left, left + math.ceil(width) + 2)
        weights = [scale * _cubic(scale * (u - j)) if shrink else _cubic(u - j) for j in taps]
        total = sum(weights)
        for j, wt in zip(taps, weights):
            if padding == "replicate":
                k = min(max(j, 1), n_in) - 1
            else:
                k = (j - 1) % (2 * n_in)
                k = k if k < n_in else 2 * n_in - 1 - k
            m[i, k] += wt / total
    return m


def _ref_imresize(img: np.ndarray, out_hw: tuple[int, int], scales: tuple[float, float], antialias=True, padding="symmetric"):
    """img: (C, H, W) float64. Dimension with the smaller scale first, H first on a tie."""
    x = img
    for dim in sorted(range(2), key=lambda k: scales[k]):
        m = _ref_matrix(x.shape[1 + dim], out_hw[dim], scales[dim], antialias, padding)
        x = np.einsum("oi,cij->coj", m, x) if dim == 0 else np.einsum("oj,cij->cio", m, x)
    return x


def _matlab_uint8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)  # round half away from zero


# ---- imresize ----------------------------------------------------------------------------


@pytest.fixture(params=["dense", "gather"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through both implementations of a pass (dense matmul and per-tap gather)."""
    import ntire_bench.data.imresize as mod

    monkeypatch.setattr(mod, "_DENSE_MAX_RATIO", 10**9 if request.param == "dense" else 0)
    return request.param


@pytest.mark.parametrize("padding", ["symmetric", "replicate"])
@pytest.mark.parametrize(
    "shape,scale",
    [((3, 7, 9), 4.0), ((3, 17, 23), 0.25), ((2, 11, 6), 0.6), ((1, 5, 8), 1.7), ((3, 9, 9), 2.0)],
)
def test_scale_matches_reference(shape, scale, padding, path) -> None:
    img = np.random.default_rng(0).uniform(0, 255, shape)
    out = imresize(torch.from_numpy(img), scale=scale, padding=padding)
    out_hw = (math.ceil(scale * shape[1]), math.ceil(scale * shape[2]))
    assert tuple(out.shape) == (shape[0],) + out_hw
    ref = _ref_imresize(img, out_hw, (scale, scale), padding=padding)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-9)


def test_downscale_without_antialias_matches_reference(path) -> None:
    img = np.random.default_rng(1).uniform(0, 255, (3, 16, 20))
    out = imresize(torch.from_numpy(img), scale=0.25, antialias=False)
    np.testing.assert_allclose(out.numpy(), _ref_imresize(img, (4, 5), (0.25, 0.25), antialias=False), atol=1e-9)
    assert not np.allclose(out.numpy(), _ref_imresize(img, (4, 5), (0.25, 0.25), antialias=True), atol=1e-3)


def test_output_size_resizes_smaller_scale_first(path) -> None:
    img = np.random.default_rng(2).uniform(0, 255, (3, 12, 7))
    out = imresize(torch.from_numpy(img), output_size=(5, 20)).numpy()
    scales = (5 / 12, 20 / 7)  # H shrinks, W grows: H goes first
    # In floating point the two passes commute up to rounding; the order becomes visible
    # only with uint8 storage between passes (see the downscale_uint8 test).
    np.testing.assert_allclose(out, _ref_imresize(img, (5, 20), scales), atol=1e-9)


def test_layouts_dtypes_and_batches(path) -> None:
    x = torch.rand(2, 3, 6, 5, dtype=torch.float64) * 255
    batched = imresize(x, scale=4)
    assert batched.shape == (2, 3, 24, 20) and batched.dtype == torch.float64
    for i in range(2):
        torch.testing.assert_close(imresize(x[i], scale=4), batched[i], rtol=0, atol=1e-12)
    f32 = imresize(x.float(), scale=4)
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32.double(), batched, rtol=0, atol=1e-3)
    assert imresize(x[0].to(torch.uint8), scale=2).dtype == torch.float32


def test_constant_and_linear_images_are_reproduced() -> None:
    const = torch.full((3, 9, 13), 77.0, dtype=torch.float64)
    for scale in (4.0, 0.25, 0.7):
        torch.testing.assert_close(imresize(const, scale=scale), torch.full_like(imresize(const, scale=scale), 77.0))
    # Keys' cubic with a = -0.5 reproduces linear functions exactly away from the border.
    ramp = torch.arange(20, dtype=torch.float64).repeat(1, 12, 1) * 3.0 + 5.0
    up = imresize(ramp, scale=4)
    x = (torch.arange(80, dtype=torch.float64) + 1) / 4 + 0.5 * (1 - 1 / 4) - 1  # 0-based source coordinate
    torch.testing.assert_close(up[0, 20, 8:-8], x[8:-8] * 3.0 + 5.0, rtol=0, atol=1e-9)


def test_output_is_neither_rounded_nor_clamped() -> None:
    step = torch.zeros(1, 8, 8, dtype=torch.float64)
    step[:, :, 4:] = 255.0
    up = imresize(step, scale=4)
    assert up.min() < 0 and up.max() > 255  # cubic overshoot at the edge survives
    assert not torch.equal(up, up.round())


def test_bad_arguments() -> None:
    x = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, scale=2, output_size=(16, 16))
    with pytest.raises(ValueError, match="padding"):
        imresize(x, scale=2, padding="reflect")
    with pytest.raises(ValueError, match="shape"):
        imresize(torch.rand(8, 8), scale=2)


@pytest.mark.gpu
def test_cuda_matches_cpu(path) -> None:
    x = torch.rand(2, 3, 31, 17, dtype=torch.float64) * 255
    for scale in (4, 0.25):
        torch.testing.assert_close(imresize(x.cuda(), scale=scale).cpu(), imresize(x, scale=scale), rtol=0, atol=1e-9)


# ---- downscale_uint8 ----------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["replicate", "symmetric"])
def test_downscale_uint8_rounds_after_each_pass(padding, path) -> None:
    hr = np.random.default_rng(3).integers(0, 256, (21, 26, 3), dtype=np.uint8)
    out = downscale_uint8(hr, 4, padding=padding)
    x = hr.transpose(2, 0, 1).astype(np.float64)
    m_h = _ref_matrix(21, 6, 0.25, True, padding)
    m_w = _ref_matrix(26, 7, 0.25, True, padding)
    # MATLAB stores each one-dimensional pass back in the input's class (uint8).
    h_first = _matlab_uint8(np.einsum("oi,cij->coj", m_h, x)).astype(np.float64)
    ref = _matlab_uint8(np.einsum("oj,cij->cio", m_w, h_first)).transpose(1, 2, 0)
    assert out.dtype == np.uint8 and out.shape == (6, 7, 3)
    assert np.array_equal(out, ref)
    # Equal scales: MATLAB does H first. W first would round differently somewhere.
    w_first = _matlab_uint8(np.einsum("oj,cij->cio", m_w, x)).astype(np.float64)
    other = _matlab_uint8(np.einsum("oi,cij->coj", m_h, w_first)).transpose(1, 2, 0)
    assert not np.array_equal(other, ref)


def test_downscale_uint8_rejects_float() -> None:
    with pytest.raises(ValueError, match="uint8"):
        downscale_uint8(np.zeros((8, 8, 3), dtype=np.float32), 4)


@pytest.mark.parametrize("name", ["Set5", "Set14", "B100"])
def test_downscale_uint8_reproduces_published_lr_exactly(shared_data: Path, name: str) -> None:
    hr_dir = shared_data / name / "HR"
    if not hr_dir.is_dir():
        pytest.skip(f"{hr_dir} is missing")
    paths = sorted(hr_dir.glob("*.png"))
    mismatches = []
    for hr_path in paths:
        hr = modcrop(read_image(hr_path), 4)
        lr = read_image(shared_data / name / "LR" / f"{hr_path.stem}x4.png")
        if not np.array_equal(downscale_uint8(hr, 4), lr):
            mismatches.append(hr_path.name)
    assert paths and not mismatches, f"{len(mismatches)} of {len(paths)} differ, first {mismatches[:3]}"
