"""Upload intake: safe zip extraction, NTIRE name matching and per-image checks, with exact reasons."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from ntire_bench.uploads.intake import UploadError, UploadLimits, UploadProblem, match_uploads, open_upload
from ntire_bench.uploads.checks import check_upload_image

HR_NAMES = ["0801", "0802", "0803"]
HR_HW = (32, 40)
LR_HW = (8, 10)
FIX = "save the SR output as an 8-bit RGB PNG (3 channels, no alpha)"


def _rgb(h: int = HR_HW[0], w: int = HR_HW[1], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def _rgb_png(h: int = HR_HW[0], w: int = HR_HW[1], seed: int = 0) -> bytes:
    return _png(_rgb(h, w, seed)[:, :, ::-1])


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _patch_headers(path: Path, name: str, *, flags: int | None = None, file_size: int | None = None) -> None:
    """Rewrite fields of one member's local and central headers, as a crafted zip would."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, flags_at, size_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 22, 26, 30), (b"PK\x01\x02", 8, 24, 28, 46)):
        start = 0
        while (pos := data.find(signature, start)) >= 0:
            start = pos + 4
            (name_len,) = struct.unpack_from("<H", data, pos + name_len_at)
            if bytes(data[pos + name_at : pos + name_at + name_len]) != encoded:
                continue
            if flags is not None:
                struct.pack_into("<H", data, pos + flags_at, flags)
            if file_size is not None:
                struct.pack_into("<I", data, pos + size_at, file_size)
    path.write_bytes(bytes(data))


def _leftovers(workdir: Path) -> list[str]:
    return sorted(p.name for p in workdir.iterdir()) if workdir.exists() else []


# --------------------------------------------------------------------------- open_upload: layouts


def test_directory_is_used_in_place(tmp_path: Path) -> None:
    (tmp_path / "sr").mkdir()
    (tmp_path / "sr" / "0801x4.png").write_bytes(_rgb_png())
    assert open_upload(tmp_path / "sr", tmp_path / "work") == tmp_path / "sr"
    assert not (tmp_path / "work").exists()  # nothing copied


def test_directory_holding_one_folder_and_codabench_metadata_descends(tmp_path: Path) -> None:
    res = tmp_path / "res"
    (res / "my_results").mkdir(parents=True)
    (res / "my_results" / "0801x4.png").write_bytes(_rgb_png())
    (res / "metadata").write_text("exitCode: 0\n")  # written by the Codabench worker
    (res / ".DS_Store").write_bytes(b"\0")
    assert open_upload(res, tmp_path / "work") == res / "my_results"


@pytest.mark.parametrize("prefix", ["", "SR_outputs/"])
def test_zip_at_root_or_in_one_folder_is_extracted_without_junk(tmp_path: Path, prefix: str) -> None:
    png = _rgb_png()
    archive = _zip(tmp_path / "up.zip", {
        f"{prefix}0801x4.png": png,
        f"{prefix}0802x4.png": png,
        f"{prefix}.DS_Store": b"\0\0",
        f"__MACOSX/{prefix}._0801x4.png": b"apple double",
    })
    root = open_upload(archive, tmp_path / "work")
    assert root.parent == tmp_path / "work" and root.name.startswith("upload-")
    assert sorted(p.name for p in root.iterdir()) == ["0801x4.png", "0802x4.png"]
    assert (root / "0801x4.png").read_bytes() == png


def test_zip_nested_two_folders_deep_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"team/SR/0801x4.png": _rgb_png()})
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == (f"{archive}: member 'team/SR/0801x4.png' is nested 2 folders deep; "
                              f"put the images at the zip root or inside one top-level folder")
    assert _leftovers(tmp_path / "work") == []


def test_zip_with_several_top_level_folders_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"a/0801x4.png": _rgb_png(), "b/0802x4.png": _rgb_png()})
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: several top-level folders ('a/', 'b/'); put all the images in one folder or at the zip root"


def test_zip_with_files_at_root_and_in_a_folder_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"readme.txt": b"hi", "SR/0801x4.png": _rgb_png()})
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: files both at the zip root ('readme.txt') and in folder 'SR/'; put all the images in one place"


def test_zip_of_only_macos_junk_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"__MACOSX/._x.png": b"x", ".DS_Store": b"x"})
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: holds no files (only folders or macOS metadata); zip the SR images"


# --------------------------------------------------------------------------- open_upload: hostile zips


@pytest.mark.parametrize(("name", "reason"), [
    ("../evil.png", "contains '..' (path traversal); zip the files with plain relative names"),
    ("SR/../../evil.png", "contains '..' (path traversal); zip the files with plain relative names"),
    ("/etc/evil.png", "has an absolute path; zip the files with relative names"),
    ("C:/evil.png", "starts with a drive letter; zip the files with relative names"),
    ("SR\\evil.png", "has a backslash in its name (a Windows path); re-create the zip with a standard zip tool"),
])
def test_path_traversal_names_are_refused_before_anything_is_written(tmp_path: Path, name: str, reason: str) -> None:
    archive = _zip(tmp_path / "up.zip", {"0801x4.png": _rgb_png(), name: b"payload"})
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: member '{name}' {reason}"
    assert _leftovers(tmp_path / "work") == []
    assert not (tmp_path / "evil.png").exists()


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "up.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("0801x4.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/app/input/ref/0801.png")  # would expose the ground truth
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: member '0801x4.png' is a symbolic link; zip the image files themselves"


def test_encrypted_member_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "up.zip", {"0801x4.png": _rgb_png()})
    _patch_headers(archive, "0801x4.png", flags=0x1)
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: member '0801x4.png' is encrypted; upload a zip without a password"


def test_nested_zip_is_refused_by_name_and_by_content(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"0801x4.png": _rgb_png()}).read_bytes()
    by_name = _zip(tmp_path / "a.zip", {"results.zip": inner})
    with pytest.raises(UploadError) as exc:
        open_upload(by_name, tmp_path / "work")
    assert str(exc.value) == f"{by_name}: member 'results.zip' is a zip inside the zip; upload one zip that holds the PNG files"
    disguised = _zip(tmp_path / "b.zip", {"0801x4.png": inner})
    with pytest.raises(UploadError) as exc:
        open_upload(disguised, tmp_path / "work")
    assert str(exc.value) == f"{disguised}: member '0801x4.png' is a zip archive inside the zip; upload one zip that holds the PNG files"
    assert _leftovers(tmp_path / "work") == []


def test_zip_bomb_by_compression_ratio_is_refused_from_the_header(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"0801x4.png": bytes(4 * 2**20)})  # 4 MiB of zeros: a few KiB zipped
    info = zipfile.ZipFile(archive).getinfo("0801x4.png")
    ratio = info.file_size / info.compress_size
    assert ratio > 100
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == (
        f"{archive}: member '0801x4.png' expands {ratio:.0f}:1 ({info.compress_size} -> {info.file_size} bytes), "
        f"over the 100:1 limit (a zip bomb?); zip the PNG files as they are"
    )
    assert _leftovers(tmp_path / "work") == []


def test_header_that_understates_the_size_is_caught_while_streaming(tmp_path: Path) -> None:
    # 512 KiB of zeros declared as 1000 bytes: the header passes every cap, the data does not.
    archive = _zip(tmp_path / "liar.zip", {"0801x4.png": bytes(512 * 1024)})
    _patch_headers(archive, "0801x4.png", file_size=1000)
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: member '0801x4.png' is corrupt (Bad CRC-32 for file '0801x4.png'); re-create the zip"
    assert _leftovers(tmp_path / "work") == []


def test_header_that_overstates_the_size_is_caught_while_streaming(tmp_path: Path) -> None:
    png = _rgb_png()
    archive = _zip(tmp_path / "liar.zip", {"0801x4.png": png})
    _patch_headers(archive, "0801x4.png", file_size=len(png) + 500)
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == (f"{archive}: member '0801x4.png' holds {len(png)} bytes but its header declares "
                              f"{len(png) + 500}; the zip is corrupt or crafted")


def test_size_and_count_caps(tmp_path: Path) -> None:
    png = _rgb_png()
    archive = _zip(tmp_path / "up.zip", {"0801x4.png": png, "0802x4.png": png, "0803x4.png": png})
    work = tmp_path / "work"
    with pytest.raises(UploadError) as exc:
        open_upload(archive, work, UploadLimits(max_member_bytes=len(png) - 1))
    assert str(exc.value) == (f"{archive}: member '0801x4.png' declares {len(png)} bytes uncompressed, "
                              f"over the {len(png) - 1}-byte limit per file")
    with pytest.raises(UploadError) as exc:
        open_upload(archive, work, UploadLimits(max_total_bytes=2 * len(png)))
    assert str(exc.value) == (f"{archive}: declares over {2 * len(png)} bytes uncompressed in total "
                              f"(at member '0803x4.png'); upload only the SR images")
    with pytest.raises(UploadError) as exc:
        open_upload(archive, work, UploadLimits(max_members=2))
    assert str(exc.value) == f"{archive}: more than 2 files; upload only the SR images"
    assert _leftovers(work) == []


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "up.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("0801x4.png", _rgb_png(seed=1))
        zf.writestr("0801X4.PNG", _rgb_png(seed=2))
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("0801x4.png", _rgb_png(seed=3))
    with pytest.raises(UploadError) as exc:
        open_upload(archive, tmp_path / "work")
    assert str(exc.value) == f"{archive}: member '0801X4.PNG' appears twice in the zip (also as '0801x4.png'); keep one copy"


def test_not_a_zip_or_missing_or_single_image_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "sr.tar.gz"
    tarball.write_bytes(zlib.compress(b"not a zip"))
    with pytest.raises(UploadError) as exc:
        open_upload(tarball, tmp_path / "work")
    assert str(exc.value) == f"{tarball}: not a zip archive; upload a .zip of PNG files (tar, 7z and rar are not accepted)"
    with pytest.raises(UploadError) as exc:
        open_upload(tmp_path / "nope.zip", tmp_path / "work")
    assert str(exc.value) == f"{tmp_path / 'nope.zip'}: no such file or folder; pass the folder or .zip of SR images"
    single = tmp_path / "0801x4.png"
    single.write_bytes(_rgb_png())
    with pytest.raises(UploadError) as exc:
        open_upload(single, tmp_path / "work")
    assert str(exc.value) == f"{single}: a single image; upload a folder or a .zip of all the SR images"


# --------------------------------------------------------------------------- match_uploads


def _upload_dir(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "up"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def test_complete_upload_pairs_every_hr_name_in_order(tmp_path: Path) -> None:
    folder = _upload_dir(tmp_path, ["0803.png", "0801x4.png", "0802x4.PNG", ".DS_Store", "metadata", "._0801x4.png"])
    match = match_uploads(folder, ["0801.png", "0802", "0803"])
    assert match.ok
    assert match.pairs == [("0801", folder / "0801x4.png"), ("0802", folder / "0802x4.PNG"), ("0803", folder / "0803.png")]


def test_missing_images_give_one_problem_per_hr_name(tmp_path: Path) -> None:
    match = match_uploads(_upload_dir(tmp_path, ["0802x4.png"]), HR_NAMES)
    assert match.pairs == [("0802", tmp_path / "up" / "0802x4.png")]
    assert match.problems == [
        UploadProblem("0801x4.png", "0801x4.png: missing: no upload for HR image 0801 (expected 0801x4.png or 0801.png)"),
        UploadProblem("0803x4.png", "0803x4.png: missing: no upload for HR image 0803 (expected 0803x4.png or 0803.png)"),
    ]


def test_extra_duplicate_non_png_and_misnamed_files(tmp_path: Path) -> None:
    folder = _upload_dir(tmp_path, ["0801.png", "0801x4.png", "0802x4.jpg", "0803x2.png", "cat.png", "readme.txt"])
    (folder / "nested").mkdir()
    (folder / "link.png").symlink_to(folder / "cat.png")
    match = match_uploads(folder, HR_NAMES)
    assert match.pairs == []
    assert [p.reason for p in match.problems] == [
        "0801.png: 0801.png and 0801x4.png both stand for HR image 0801; keep only 0801x4.png",
        ("0802x4.jpg: is JPG, not PNG; SR outputs must be lossless PNG (compression changes the pixels and the PSNR); "
        "save it as 0802x4.png"),
        "0803x2.png: is named for x2, but this is an x4 challenge; upload the x4 output as 0803x4.png",
        "cat.png: has no HR partner in this set; name each output after its LR input, e.g. 0801x4.png",
        "link.png: is a symbolic link; upload the image file itself",
        "nested: is a folder inside the upload; put all the images directly in one folder, no sub-folders",
        "readme.txt: is not an image; upload only the PNG outputs",
    ]
    assert all("\n" not in p.reason and p.reason.startswith(p.file + ": ") for p in match.problems)


def test_near_miss_name_gets_a_suggestion(tmp_path: Path) -> None:
    match = match_uploads(_upload_dir(tmp_path, ["0801x4.png", "0802x4.png", "0803_x4.png"]), HR_NAMES)
    assert [p.reason for p in match.problems] == [
        ("0803_x4.png: has no HR partner in this set (did you mean '0803x4.png'?); name each output after its LR input, "
        "e.g. 0801x4.png"),
        "0803x4.png: missing: no upload for HR image 0803 (expected 0803x4.png or 0803.png)",
    ]


def test_match_uploads_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="not a folder; call open_upload first"):
        match_uploads(tmp_path / "nope", HR_NAMES)
    with pytest.raises(ValueError, match="HR name '0801' is listed twice"):
        match_uploads(tmp_path, ["0801", "0801.png"])


# --------------------------------------------------------------------------- check_upload_image


def _write(tmp_path: Path, data: bytes, name: str = "0801x4.png") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_good_image_is_decoded_to_rgb(tmp_path: Path) -> None:
    rgb = _rgb()
    image, problem = check_upload_image(_write(tmp_path, _png(rgb[:, :, ::-1])), HR_HW, 4, LR_HW)
    assert problem is None
    assert image.dtype == np.uint8 and np.array_equal(image, rgb)


@pytest.mark.parametrize(("hw", "reason"), [
    (LR_HW, "wrong scale: 8x10 (HxW) is the size of the LR input (x1); expected the x4 output, 32x40"),
    ((16, 20), "wrong scale: 16x20 (HxW) looks like an x2 output (LR 8x10 x2); expected the x4 output, 32x40"),
    ((24, 30), "wrong scale: 24x30 (HxW) looks like an x3 output (LR 8x10 x3); expected the x4 output, 32x40"),
    ((40, 32), "wrong size 40x32 (HxW): height and width are swapped; expected 32x40"),
    ((32, 41), "wrong size 32x41 (HxW); expected 32x40, the size of the HR image"),
])
def test_wrong_size_and_wrong_scale(tmp_path: Path, hw: tuple[int, int], reason: str) -> None:
    image, problem = check_upload_image(_write(tmp_path, _rgb_png(*hw)), HR_HW, 4, LR_HW)
    assert image is None
    assert problem == UploadProblem("0801x4.png", f"0801x4.png: {reason}")


def test_lr_size_is_derived_from_the_hr_size_when_not_given(tmp_path: Path) -> None:
    _, problem = check_upload_image(_write(tmp_path, _rgb_png(16, 20)), HR_HW, 4)
    assert problem.reason == "0801x4.png: wrong scale: 16x20 (HxW) looks like an x2 output (LR 8x10 x2); expected the x4 output, 32x40"


@pytest.mark.parametrize(("array", "kind"), [
    (np.zeros(HR_HW, np.uint8), "8-bit greyscale"),
    (np.zeros((*HR_HW, 3), np.uint16), "16-bit RGB"),
    (np.zeros((*HR_HW, 4), np.uint8), "8-bit RGBA"),
    (np.zeros((*HR_HW, 4), np.uint16), "16-bit RGBA"),
    (np.zeros(HR_HW, np.uint16), "16-bit greyscale"),
])
def test_grey_16bit_and_alpha_pngs_are_refused(tmp_path: Path, array: np.ndarray, kind: str) -> None:
    image, problem = check_upload_image(_write(tmp_path, _png(array)), HR_HW, 4, LR_HW)
    assert image is None
    assert problem.reason == f"0801x4.png: {kind} PNG; {FIX}"


def test_grey_plus_alpha_png_is_refused(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    path = tmp_path / "0801x4.png"
    pil.new("LA", (HR_HW[1], HR_HW[0])).save(path)
    _, problem = check_upload_image(path, HR_HW, 4, LR_HW)
    assert problem.reason == f"0801x4.png: 8-bit greyscale+alpha PNG; {FIX}"


def test_palette_png_with_transparency_is_refused_but_opaque_palette_is_read(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    opaque = pil.new("P", (HR_HW[1], HR_HW[0]))
    opaque.putpalette([0, 0, 0, 200, 100, 50] + [0] * (256 * 3 - 6))
    opaque.putpixel((3, 2), 1)
    opaque.save(tmp_path / "0801x4.png")
    image, problem = check_upload_image(tmp_path / "0801x4.png", HR_HW, 4, LR_HW)
    assert problem is None and image[2, 3].tolist() == [200, 100, 50] and image[0, 0].tolist() == [0, 0, 0]
    opaque.save(tmp_path / "0802x4.png", transparency=0)
    _, problem = check_upload_image(tmp_path / "0802x4.png", HR_HW, 4, LR_HW)
    assert problem.reason == f"0802x4.png: 8-bit palette PNG with transparency; {FIX}"


def test_grey_png_is_accepted_when_allowed(tmp_path: Path) -> None:
    grey = np.arange(HR_HW[0] * HR_HW[1], dtype=np.uint16).reshape(HR_HW).astype(np.uint8)
    image, problem = check_upload_image(_write(tmp_path, _png(grey)), HR_HW, 4, LR_HW, allow_grey=True)
    assert problem is None and image.shape == (*HR_HW, 3) and np.array_equal(image[:, :, 1], grey)


def test_truncated_corrupt_empty_missing_and_non_png_files(tmp_path: Path) -> None:
    png = _rgb_png()
    cut = png[: png.rfind(b"IDAT") + 40]
    _, problem = check_upload_image(_write(tmp_path, cut), HR_HW, 4, LR_HW)
    assert problem.reason == "0801x4.png: truncated PNG (no IEND chunk after the image data); re-export or re-download the file"
    garbage = png[:33] + os.urandom(64) + b"IEND"
    _, problem = check_upload_image(_write(tmp_path, garbage), HR_HW, 4, LR_HW)
    assert problem.reason == ("0801x4.png: not a decodable image (corrupt or unsupported format); "
                              "use 8-bit PNG, JPEG or BMP")
    _, problem = check_upload_image(_write(tmp_path, png[:20]), HR_HW, 4, LR_HW)
    assert problem.reason == "0801x4.png: corrupt PNG (no IHDR header); re-export the image"
    _, problem = check_upload_image(_write(tmp_path, b""), HR_HW, 4, LR_HW)
    assert problem.reason == "0801x4.png: empty file; re-export the image"
    _, jpeg = cv2.imencode(".jpg", _rgb())
    _, problem = check_upload_image(_write(tmp_path, jpeg.tobytes()), HR_HW, 4, LR_HW)
    assert problem.reason == "0801x4.png: is a JPEG file, not a PNG; save the SR output as an 8-bit RGB PNG"
    _, problem = check_upload_image(_write(tmp_path, b"hello world"), HR_HW, 4, LR_HW)
    assert problem.reason == "0801x4.png: is not a PNG file (unrecognised content); save the SR output as an 8-bit RGB PNG"
    _, problem = check_upload_image(tmp_path / "0809x4.png", HR_HW, 4, LR_HW)
    assert problem.reason == "0809x4.png: cannot be read (No such file or directory); re-upload the file"
