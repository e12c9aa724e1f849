"""The fast metric paths: score_files, the banded OpenCV + numpy path and the compiled kernel."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ntire_bench.metrics.ssim as ssim_module
import ntire_bench.metrics.ssim_numba as metrics_kernel
from ntire_bench.data.images import ImageError, read_image, write_image
from ntire_bench.metrics.quality import image_quality, score_files

from support.paths import SHARED
HAS_NUMBA = importlib.util.find_spec("numba") is not None and metrics_kernel.compiled_kernel() is not None


def _pair(h: int, w: int, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """An HxWx3 uint8 HR image with some structure and a noisy SR copy of it."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (h // 4 + 2, w // 4 + 2, 3))
    hr = np.clip(np.kron(base, np.ones((4, 4, 1)))[:h, :w] + rng.normal(0, 8, (h, w, 3)), 0, 255).round().astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, noise, hr.shape), 0, 255).round().astype(np.uint8)
    return sr, hr


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@pytest.fixture()
def files(tmp_path: Path) -> list[tuple[Path, Path]]:
    """Three (SR, HR) PNG pairs of different sizes."""
    pairs = []
    for i, (h, w) in enumerate([(40, 48), (33, 57), (64, 36)]):
        sr, hr = _pair(h, w, seed=i, noise=6.0 + 4 * i)
        write_image(tmp_path / f"{i}_sr.png", sr)
        write_image(tmp_path / f"{i}_hr.png", hr)
        pairs.append((tmp_path / f"{i}_sr.png", tmp_path / f"{i}_hr.png"))
    return pairs


def _expected(pair: tuple[Path, Path], border: int = 4) -> dict[str, float]:
    return image_quality(_chw(read_image(pair[0])), _chw(read_image(pair[1])), border)


# ---- score_files ----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, None])
def test_score_files_equals_image_quality_in_order(files: list[tuple[Path, Path]], workers: int | None) -> None:
    got = score_files(files, border=4, workers=workers)
    assert got == [_expected(pair) for pair in files]  # exactly the same floats, input order
    assert got[0] != got[1] != got[2]


def test_on_result_sees_every_result_in_order(files: list[tuple[Path, Path]]) -> None:
    seen: list[tuple[int, dict]] = []
    results = score_files(files * 2, border=4, workers=2, on_result=lambda i, r: seen.append((i, r)))
    assert [i for i, _ in seen] == list(range(6))
    assert [r for _, r in seen] == results
    assert results[:3] == results[3:]


def test_bad_pairs_become_one_line_errors(files: list[tuple[Path, Path]], tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(files[0][0].read_bytes()[:200])
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    small_sr, small_hr = _pair(16, 16, seed=9, noise=5.0)
    write_image(tmp_path / "small_sr.png", small_sr)
    write_image(tmp_path / "small_hr.png", small_hr)
    pairs = [
        files[0],
        (truncated, files[0][1]),
        (files[0][0], tmp_path / "missing.png"),
        (garbage, files[0][1]),
        (files[1][0], files[0][1]),  # 33x57 against 40x48
        (tmp_path / "small_sr.png", tmp_path / "small_hr.png"),  # 8x8 after the border: no SSIM window
        files[2],
    ]
    got = score_files(pairs, border=4, workers=2)
    assert got[0] == _expected(files[0]) and got[-1] == _expected(files[2])
    errors = got[1:-1]
    assert all(isinstance(e, ValueError) and "\n" not in str(e) for e in errors)
    assert all(isinstance(e, ImageError) for e in errors[:4])
    assert "truncated.png" in str(errors[0]) and "truncated" in str(errors[0])
    assert "missing.png" in str(errors[1])
    assert "garbage.png" in str(errors[2])
    assert "33x57" in str(errors[3]) and "40x48" in str(errors[3]) and str(files[1][0]) in str(errors[3])
    assert "small_sr.png" in str(errors[4]) and "window" in str(errors[4])


def test_score_files_refuses_bad_arguments(files: list[tuple[Path, Path]]) -> None:
    with pytest.raises(ValueError, match="workers"):
        score_files(files, border=4, workers=0)
    with pytest.raises(ValueError, match="border"):
        score_files(files, border=-1)
    assert score_files([], border=4) == []


def test_an_error_in_on_result_propagates(files: list[tuple[Path, Path]]) -> None:
    def fail(index: int, result: object) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        score_files(files, border=4, on_result=fail)


def test_real_set5_hr_against_itself() -> None:
    hr_dir = SHARED / "data" / "Set5" / "HR"
    if not hr_dir.is_dir():
        pytest.skip(f"{hr_dir} is missing")
    paths = sorted(hr_dir.glob("*.png"))
    for result in score_files([(p, p) for p in paths], border=4):
        assert result["psnr"] == math.inf and result["psnr_y"] == math.inf
        assert result["ssim"] == pytest.approx(1.0, abs=1e-12) and result["ssim_y"] == pytest.approx(1.0, abs=1e-12)


# ---- the OpenCV + numpy path -----------------------------------------------------------------


@pytest.mark.parametrize("h,w,border", [(70, 45, 4), (41, 300, 0), (150, 23, 2)])
def test_bands_change_no_bit(monkeypatch: pytest.MonkeyPatch, h: int, w: int, border: int) -> None:
    sr, hr = _pair(h, w, seed=h, noise=12.0)
    whole = image_quality(_chw(sr), _chw(hr), border, backend="numpy")
    monkeypatch.setattr(ssim_module, "BAND_VALUES", 1)  # one sum chunk of rows per band
    assert image_quality(_chw(sr), _chw(hr), border, backend="numpy") == whole
    monkeypatch.setattr(ssim_module, "SUM_CHUNK", 1)  # one row per band
    banded = image_quality(_chw(sr), _chw(hr), border, backend="numpy")
    assert banded["psnr"] == whole["psnr"] and banded["psnr_y"] == whole["psnr_y"]  # exact integer sums
    for key in ("ssim", "ssim_y"):  # other chunks add up in another order
        assert banded[key] == pytest.approx(whole[key], rel=1e-14)


@pytest.mark.parametrize("backend", ["numpy"] + (["numba"] if HAS_NUMBA else []))
def test_layout_and_threads_do_not_change_results(backend: str) -> None:
    sr, hr = _pair(53, 61, seed=3, noise=9.0)
    want = image_quality(_chw(sr), _chw(hr), 4, backend=backend)
    hwc_views = (torch.from_numpy(sr).permute(2, 0, 1), torch.from_numpy(hr).permute(2, 0, 1))  # as decoded
    assert image_quality(*hwc_views, 4, backend=backend, parallel=False) == want
    assert image_quality(*hwc_views, 4, backend=backend, parallel=True) == want


# ---- the compiled kernel ---------------------------------------------------------------------


def test_kernel_logic_uncompiled_matches_numpy_path() -> None:
    """The kernel's Python source, run by the interpreter, against the OpenCV + numpy path."""
    sr, hr = _pair(23, 26, seed=5, noise=15.0)
    a, b = _chw(sr).numpy(), _chw(hr).numpy()
    g = np.ascontiguousarray(ssim_module.gaussian_1d()[:, 0])
    want = ssim_module.ssim_and_sse(a, b, range(0, 3), True)  # Y, R, G, B
    valid = (23 - 10) * (26 - 10)
    for (ssim, sse), channel in zip(want, (ssim_module.LUMA, 0, 1, 2)):
        total, got_sse = metrics_kernel.ssim_sse_kernel(a, b, channel, g)
        assert got_sse == sse
        assert total / valid == pytest.approx(ssim, rel=0, abs=1e-14)


def test_numba_backend_is_refused_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_kernel, "compiled_kernel", lambda: None)
    a = torch.zeros(3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError, match="pip install numba"):
        image_quality(a, a, 4, backend="numba")
    assert image_quality(a, a, 4)["psnr"] == math.inf  # "auto" falls back to OpenCV + numpy


@pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("h,w,border,noise", [(481, 321, 4, 6.0), (37, 53, 0, 40.0), (30, 29, 2, 0.0)])
def test_numba_backend_matches_numpy_backend(h: int, w: int, border: int, noise: float) -> None:
    sr, hr = _pair(h, w, seed=w, noise=noise)
    fast = image_quality(_chw(sr), _chw(hr), border, backend="numba")
    slow = image_quality(_chw(sr), _chw(hr), border, backend="numpy")
    assert fast["psnr"] == slow["psnr"] and fast["psnr_y"] == slow["psnr_y"]
    for key in ("ssim", "ssim_y"):
        assert fast[key] == pytest.approx(slow[key], rel=0, abs=1e-14), key
    assert image_quality(_chw(sr), _chw(hr), border) == fast  # "auto" picks numba on CPU
