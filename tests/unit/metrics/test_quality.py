"""Quality metrics against a plain numpy float64 implementation of the official formulas."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from ntire_bench.metrics.quality import image_quality, mean_quality, quantize, rgb_to_y

# ---- the reference: the official utils_image formulas, written out plainly --------------


def ref_y(img_hwc: np.ndarray) -> np.ndarray:
    """rgb2ycbcr(only_y=True) on uint8: float64 dot, rounded back to uint8."""
    return (np.dot(img_hwc.astype(np.float64), [65.481, 128.553, 24.966]) / 255.0 + 16.0).round().astype(np.uint8)


def ref_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 20 * math.log10(255.0 / math.sqrt(mse))


def ref_ssim_2d(a: np.ndarray, b: np.ndarray) -> float:
    """MATLAB-style SSIM: 11x11 Gaussian (sigma 1.5), valid region only, float64."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(x: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", np.lib.stride_tricks.sliding_window_view(x, (11, 11)), window)

    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filt(x), filt(y)
    s11 = filt(x * x) - mu1**2
    s22 = filt(y * y) - mu2**2
    s12 = filt(x * y) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(ssim_map.mean())


def ref_quality(sr_hwc: np.ndarray, hr_hwc: np.ndarray, border: int) -> dict[str, float]:
    h, w = sr_hwc.shape[:2]
    a = sr_hwc[border : h - border, border : w - border]
    b = hr_hwc[border : h - border, border : w - border]
    ya, yb = ref_y(a), ref_y(b)
    return {
        "psnr": ref_psnr(a, b),
        "psnr_y": ref_psnr(ya, yb),
        "ssim": float(np.mean([ref_ssim_2d(a[:, :, c], b[:, :, c]) for c in range(3)])),
        "ssim_y": ref_ssim_2d(ya, yb),
    }


def _pair(h: int, w: int, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """A smooth-ish HR image and a noisy copy of it, both uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (h // 4 + 2, w // 4 + 2, 3))
    hr = np.kron(base, np.ones((4, 4, 1)))[:h, :w] + rng.normal(0, 10, (h, w, 3))
    hr = np.clip(hr, 0, 255).round().astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, noise, hr.shape), 0, 255).round().astype(np.uint8)
    return sr, hr


def _t(img_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img_hwc.transpose(2, 0, 1)))


# ---- quantize ----------------------------------------------------------------------------


def test_quantize_rounds_half_to_even_like_numpy() -> None:
    x = torch.tensor([0.5, 1.5, 2.5, 3.49, 254.5, 255.4, -3.0, 300.0])
    assert quantize(x, 255.0).tolist() == [0, 2, 2, 3, 254, 255, 0, 255]
    assert quantize(x, 255.0).tolist() == np.uint8(np.clip(x.numpy(), 0, 255).round()).tolist()


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_quantize_matches_official_float32_numpy(data_range: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.1, 1.1, 50_000).astype(np.float32) * np.float32(data_range)
    x[:256] = np.arange(256, dtype=np.float32) * np.float32(data_range / 255.0)  # exact levels
    if data_range == 1.0:  # the official tensor2uint: float32 clamp(0, 1) * 255, numpy round
        official = np.uint8((np.clip(x, 0, 1) * np.float32(255.0)).round())
    else:
        official = np.uint8(np.clip(x, 0, 255).round())
    out = quantize(torch.from_numpy(x), data_range)
    assert out.dtype == torch.uint8
    assert np.array_equal(out.numpy(), official)


def test_quantize_keeps_layout() -> None:
    x = torch.rand(2, 3, 5, 4)
    assert quantize(x, 1.0).shape == (2, 3, 5, 4)


# ---- Y ------------------------------------------------------------------------------------


def test_rgb_to_y_matches_reference_rounded_luma() -> None:
    img = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    y = rgb_to_y(_t(img))
    assert y.dtype == torch.uint8 and y.shape == (40, 30)
    assert np.array_equal(y.numpy(), ref_y(img))
    batch = torch.stack([_t(img), _t(img[::-1].copy())])
    yb = rgb_to_y(batch)  # batched input takes the torch path
    assert yb.shape == (2, 40, 30)
    assert np.array_equal(yb[0].numpy(), ref_y(img))
    # Extremes: black is 16, white is 235, as in MATLAB.
    assert rgb_to_y(torch.zeros(3, 1, 1, dtype=torch.uint8)).item() == 16
    assert rgb_to_y(torch.full((3, 1, 1), 255, dtype=torch.uint8)).item() == 235


# ---- PSNR / SSIM ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize(
    "h,w,border,noise,seed",
    [(48, 40, 4, 8.0, 0), (37, 53, 0, 20.0, 1), (64, 64, 4, 2.0, 2), (30, 29, 2, 60.0, 3)],
)
def test_matches_numpy_reference(backend: str, h: int, w: int, border: int, noise: float, seed: int) -> None:
    sr, hr = _pair(h, w, seed, noise)
    got = image_quality(_t(sr), _t(hr), border, backend=backend)
    want = ref_quality(sr, hr, border)
    assert set(got) == {"psnr", "psnr_y", "ssim", "ssim_y"}
    for key in want:
        assert isinstance(got[key], float)
        assert got[key] == pytest.approx(want[key], rel=0, abs=1e-10), key


def test_unrelated_random_images_match_reference() -> None:
    rng = np.random.default_rng(4)
    sr = rng.integers(0, 256, (50, 45, 3), dtype=np.uint8)
    hr = rng.integers(0, 256, (50, 45, 3), dtype=np.uint8)
    got, want = image_quality(_t(sr), _t(hr), 4), ref_quality(sr, hr, 4)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=0, abs=1e-10), key


def test_identical_images_give_inf_psnr_without_warnings() -> None:
    _, hr = _pair(40, 40, 5, 0.0)
    for backend in ("numpy", "torch"):
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error")
            q = image_quality(_t(hr), _t(hr), 4, backend=backend)
        assert q["psnr"] == math.inf and q["psnr_y"] == math.inf
        assert q["ssim"] == pytest.approx(1.0, abs=1e-12) and q["ssim_y"] == pytest.approx(1.0, abs=1e-12)


def test_border_pixels_are_ignored() -> None:
    sr, hr = _pair(40, 36, 6, 0.0)
    sr = hr.copy()
    sr[:4] = 0
    sr[:, -4:] = 255
    assert image_quality(_t(sr), _t(hr), 4)["psnr"] == math.inf
    assert image_quality(_t(sr), _t(hr), 3)["psnr"] < 40


def test_rgb_ssim_is_mean_of_channel_ssims() -> None:
    sr, hr = _pair(40, 40, 7, 15.0)
    q = image_quality(_t(sr), _t(hr), 4)
    per_channel = [ref_ssim_2d(sr[4:-4, 4:-4, c], hr[4:-4, 4:-4, c]) for c in range(3)]
    assert q["ssim"] == pytest.approx(sum(per_channel) / 3, abs=1e-12)


def test_bad_inputs_are_refused() -> None:
    a = torch.zeros(3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError, match="uint8"):
        image_quality(a.float(), a.float(), 4)
    with pytest.raises(ValueError, match="same shape"):
        image_quality(a, torch.zeros(3, 32, 28, dtype=torch.uint8), 4)
    with pytest.raises(ValueError, match="same shape"):
        image_quality(a[0], a[0], 4)
    with pytest.raises(ValueError, match="window"):
        image_quality(a[:, :18, :18].contiguous(), a[:, :18, :18].contiguous(), 4)
    with pytest.raises(ValueError, match="border"):
        image_quality(a, a, 16)


def test_mean_quality() -> None:
    rows = [{"psnr": 30.0, "psnr_y": 31.0, "ssim": 0.8, "ssim_y": 0.9}, {"psnr": 32.0, "psnr_y": 33.0, "ssim": 0.6, "ssim_y": 0.7}]
    assert mean_quality(rows) == pytest.approx({"psnr": 31.0, "psnr_y": 32.0, "ssim": 0.7, "ssim_y": 0.8})
    with pytest.raises(ValueError):
        mean_quality([])


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    sr, hr = _pair(96, 80, 8, 12.0)
    cpu = image_quality(_t(sr), _t(hr), 4)
    gpu = image_quality(_t(sr).cuda(), _t(hr).cuda(), 4)
    for key in cpu:
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-10), key
    x = torch.rand(3, 20, 20, device="cuda")
    assert quantize(x, 1.0).device.type == "cuda"


def test_large_images_bypass_the_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    import ntire_bench.metrics.ssim as ssim_module

    sr, hr = _pair(40, 44, 9, 10.0)
    cached = image_quality(_t(sr), _t(hr), 4)
    monkeypatch.setattr(ssim_module, "WORKSPACE_MAX_BYTES", 0)
    assert image_quality(_t(sr), _t(hr), 4) == cached


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_works_in_a_forked_child() -> None:
    import multiprocessing

    sr, hr = _pair(40, 40, 10, 10.0)
    want = image_quality(_t(sr), _t(hr), 4)  # creates the thread pool in the parent
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_quality_in_child, (sr, hr)).get(timeout=60)
    assert got == want


def _quality_in_child(sr: np.ndarray, hr: np.ndarray) -> dict[str, float]:
    return image_quality(_t(sr), _t(hr), 4)
