"""Image I/O: what is read, and the one-line errors for every kind of bad file."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from ntire_bench.data.images import ImageError, check_pair, modcrop, read_image, write_image


def _rgb(h: int = 12, w: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_one_line_naming(exc: pytest.ExceptionInfo, *paths: Path) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for path in paths:
        assert str(path) in message


def test_png_round_trip_is_rgb(tmp_path: Path) -> None:
    rgb = _rgb()
    path = tmp_path / "a.png"
    write_image(path, rgb)
    # The file on disk is BGR, as OpenCV writes it; read_image gives RGB back.
    assert np.array_equal(cv2.imread(str(path))[:, :, ::-1], rgb)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (12, 10, 3) and out.flags.c_contiguous
    assert np.array_equal(out, rgb)


def test_bmp_and_jpeg_are_read(tmp_path: Path) -> None:
    rgb = _rgb(16, 16)
    cv2.imwrite(str(tmp_path / "a.bmp"), rgb[:, :, ::-1])
    assert np.array_equal(read_image(tmp_path / "a.bmp"), rgb)
    flat = np.full((16, 16, 3), (200, 40, 90), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), flat[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    jpeg = read_image(tmp_path / "a.jpg")
    assert jpeg.shape == (16, 16, 3)
    assert np.abs(jpeg.astype(int) - flat).max() <= 3  # lossy, but channel order must be RGB


def test_grey_becomes_three_identical_channels(tmp_path: Path) -> None:
    grey = np.random.default_rng(1).integers(0, 256, (9, 7), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (9, 7, 3)
    for c in range(3):
        assert np.array_equal(out[:, :, c], grey)


def test_rgba_drops_alpha_with_warning_naming_file(tmp_path: Path) -> None:
    rgb = _rgb()
    alpha = np.full(rgb.shape[:2] + (1,), 7, dtype=np.uint8)
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), np.concatenate([rgb[:, :, ::-1], alpha], axis=2))
    with pytest.warns(UserWarning, match="alpha") as record:
        out = read_image(path)
    assert str(path) in str(record[0].message)
    assert np.array_equal(out, rgb)


def test_16_bit_is_rejected_naming_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 40000, dtype=np.uint16))
    with pytest.raises(ImageError, match="16-bit") as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)


def test_corrupt_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ImageError) as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)


def test_png_with_garbage_after_signature(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20 + b"IEND\xaeB`\x82")
    with pytest.raises(ImageError) as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.98])
def test_truncated_png(tmp_path: Path, keep: float) -> None:
    full = tmp_path / "full.png"
    cv2.imwrite(str(full), _rgb(64, 64))
    data = full.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError, match="truncated") as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    cv2.imwrite(str(full), _rgb(64, 64))
    data = full.read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as exc:
        read_image(path)
    _assert_one_line_naming(exc, path)


def test_bytes_after_the_end_marker_are_allowed(tmp_path: Path) -> None:
    rgb = _rgb(32, 32)
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"trailer{suffix}"
        cv2.imwrite(str(path), rgb[:, :, ::-1])
        path.write_bytes(path.read_bytes() + b"\x00" * 4096 + b"camera trailer")
        assert read_image(path).shape == (32, 32, 3)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageError, match="no such") as exc:
        read_image(missing)
    _assert_one_line_naming(exc, missing)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty") as exc:
        read_image(empty)
    _assert_one_line_naming(exc, empty)
    with pytest.raises(ImageError) as exc:
        read_image(tmp_path)  # a directory
    _assert_one_line_naming(exc, tmp_path)


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def test_write_image_errors_name_the_file(tmp_path: Path) -> None:
    bad_dir = tmp_path / "missing_dir" / "x.png"
    with pytest.raises(ImageError) as exc:
        write_image(bad_dir, _rgb())
    _assert_one_line_naming(exc, bad_dir)
    with pytest.raises(ImageError, match="uint8") as exc:
        write_image(tmp_path / "f.png", _rgb().astype(np.float32))
    _assert_one_line_naming(exc, tmp_path / "f.png")


def test_modcrop_keeps_top_left() -> None:
    img = _rgb(13, 10)
    out = modcrop(img, 4)
    assert out.shape == (12, 8, 3)
    assert np.array_equal(out, img[:12, :8])
    assert modcrop(img[:, :, 0], 4).shape == (12, 8)
    assert modcrop(_rgb(8, 8), 4).shape == (8, 8, 3)


def test_check_pair_accepts_matching_and_modcropped_hr() -> None:
    check_pair(_rgb(3, 5), _rgb(12, 20), 4, "lr.png", "hr.png")
    check_pair(_rgb(3, 5), _rgb(15, 23), 4, "lr.png", "hr.png")  # HR cropped to 12x20 first


def test_check_pair_mismatch_names_both_files(tmp_path: Path) -> None:
    lr, hr = tmp_path / "img_001x4.png", tmp_path / "img_001.png"
    with pytest.raises(ImageError) as exc:
        check_pair(_rgb(3, 5), _rgb(16, 20), 4, lr, hr)
    _assert_one_line_naming(exc, lr, hr)


def test_no_warning_for_plain_rgb(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", _rgb())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "a.png")
