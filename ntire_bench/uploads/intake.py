"""Intake of uploaded SR images: safe zip extraction, NTIRE name matching, per-image checks.

A development-phase submission is a folder (or a ``.zip``) of x4 SR outputs named like the
LR inputs (``0801x4.png``) or like the HR images (``0801.png``). This module turns such an
upload into ``(HR name, file)`` pairs and a list of precise, one-line problems; it computes
no metric.

Only PNG is accepted. The NTIRE rules ask for PNG, it is the only lossless format the
official pipeline writes, and a JPEG would lose PSNR to its own compression. One format also
means one header to audit for the mistakes that change pixels silently (grey, alpha, 16-bit).

Only an upload that is unusable as a whole raises ``UploadError`` (not a folder or zip, a
corrupt zip, a path-traversal or symlink member, a zip bomb, an encrypted or nested archive,
an ambiguous folder layout). A bad image never raises: it becomes an ``UploadProblem``.

Each image's own checks (PNG header, then pixels) are in upload_images.py.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


from ntire_bench.data.datasets import IMAGE_SUFFIXES
from ntire_bench.util.text import did_you_mean, one_line

# macOS Finder leaves these in every zip it makes; they are never part of a submission.
_MACOS_DIR = "__MACOSX"
_MACOS_FILES = {".DS_Store"}
_APPLEDOUBLE_PREFIX = "._"
# The Codabench compute worker writes a ``metadata`` file (exit code, elapsed time) next to
# the prediction output, so it sits beside the images in /app/input/res at scoring time.
CODABENCH_METADATA_FILE = "metadata"

_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
_SCALED_STEM = re.compile(r"^(?P<base>.+?)[xX](?P<scale>\d+)$")

_OTHER_IMAGE_SUFFIXES = tuple(sorted(set(IMAGE_SUFFIXES) | {".tif", ".tiff", ".webp", ".gif"} - {".png"}))


class UploadError(ValueError):
    """The upload as a whole is unusable; the message is one line naming the file or member."""


@dataclass(frozen=True)
class UploadLimits:
    """Caps that keep a hostile or broken zip from filling the disk.

    ``max_ratio`` (uncompressed/compressed) is only enforced on members larger than
    ``ratio_min_bytes``: tiny files compress absurdly well and cannot hurt. PNG data is
    already deflated, so a real SR output compresses about 1:1 in a zip.
    """

    max_members: int = 2_000
    max_member_bytes: int = 128 * 2**20
    max_total_bytes: int = 4 * 2**30
    max_ratio: float = 100.0
    ratio_min_bytes: int = 2**20


@dataclass(frozen=True)
class UploadProblem:
    """One bad file of an upload: ``reason`` is one line that starts with the file name."""

    file: str
    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass
class UploadMatch:
    """Uploads paired with HR names, in the order of the HR names, and what was wrong."""

    pairs: list[tuple[str, Path]] = field(default_factory=list)
    problems: list[UploadProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- open_upload


def _is_junk(name: str) -> bool:
    return name in _MACOS_FILES or name.startswith(_APPLEDOUBLE_PREFIX)


def open_upload(path: Path, workdir: Path, limits: UploadLimits = UploadLimits()) -> Path:
    """Return the folder that holds the uploaded images.

    A directory is used in place (not copied); when it holds no files but exactly one
    sub-folder, that folder is returned, since zipping a folder and letting Codabench
    unpack it produces exactly that; when it holds nothing but one zip, that zip is opened.
    A zip is checked member by member and extracted into
    a new folder under ``workdir``; images may sit at its root or inside one top-level
    folder. Raises ``UploadError`` when the upload as a whole cannot be used.
    """
    path = Path(path)
    if path.is_dir():
        root = _directory_root(path)
        lone_zip = _lone_zip(root)
        if lone_zip is None:
            return root
        path = lone_zip  # Codabench unpacks the upload once; a zip zipped again arrives as one .zip
    if not path.exists():
        raise UploadError(f"{path}: no such file or folder; pass the folder or .zip of SR images")
    if not path.is_file():
        raise UploadError(f"{path}: not a regular file or folder; pass the folder or .zip of SR images")
    if path.suffix.lower() == ".png":
        raise UploadError(f"{path}: a single image; upload a folder or a .zip of all the SR images")
    if not zipfile.is_zipfile(path):
        raise UploadError(f"{path}: not a zip archive; upload a .zip of PNG files (tar, 7z and rar are not accepted)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix="upload-", dir=workdir))
    try:
        _extract_zip(path, dest, limits)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def _directory_root(directory: Path) -> Path:
    entries = [e for e in directory.iterdir() if not _is_junk(e.name) and e.name not in (_MACOS_DIR, CODABENCH_METADATA_FILE)]
    folders = [e for e in entries if e.is_dir() and not e.is_symlink()]
    if len(entries) == 1 and len(folders) == 1:
        return folders[0]
    return directory


def _lone_zip(directory: Path) -> Path | None:
    """The only file of ``directory`` when it is a zip archive (junk and Codabench's metadata aside)."""
    entries = [e for e in directory.iterdir() if not _is_junk(e.name) and e.name not in (_MACOS_DIR, CODABENCH_METADATA_FILE)]
    if len(entries) == 1 and entries[0].is_file() and not entries[0].is_symlink() and entries[0].suffix.lower() == ".zip":
        return entries[0]
    return None


def _member_name_problem(name: str) -> str | None:
    if "\\" in name:
        return "has a backslash in its name (a Windows path); re-create the zip with a standard zip tool"
    if any(ord(ch) < 32 for ch in name):
        return "has a control character in its name; rename the file"
    if name.startswith("/"):
        return "has an absolute path; zip the files with relative names"
    if _DRIVE.match(name):
        return "starts with a drive letter; zip the files with relative names"
    if ".." in PurePosixPath(name).parts:
        return "contains '..' (path traversal); zip the files with plain relative names"
    return None


def _extract_zip(zip_path: Path, dest: Path, limits: UploadLimits) -> None:
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UploadError(f"{zip_path}: corrupt zip ({one_line(exc, with_type=False)}); re-create the archive") from None
    with archive:
        files = _checked_members(zip_path, archive.infolist(), limits)
        strip = _layout_prefix(zip_path, [parts for _, parts in files])
        dest_resolved = dest.resolve()
        total = 0
        for info, parts in files:
            target = dest.joinpath(*parts[strip:])
            if not target.resolve().is_relative_to(dest_resolved):  # belt and braces after the name checks
                raise UploadError(f"{zip_path}: member '{info.filename}' would be written outside the upload folder; refused")
            target.parent.mkdir(parents=True, exist_ok=True)
            total = _stream_member(zip_path, archive, info, target, total, limits)


def _checked_members(
    zip_path: Path, infos: list[zipfile.ZipInfo], limits: UploadLimits
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Check every header before anything is written; return the members to extract."""
    files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    seen: dict[str, str] = {}
    declared_total = 0
    for info in infos:
        name = info.filename
        where = f"{zip_path}: member '{name}'"
        problem = _member_name_problem(name)
        if problem:
            raise UploadError(f"{where} {problem}")
        if info.flag_bits & 0x1:
            raise UploadError(f"{where} is encrypted; upload a zip without a password")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadError(f"{where} is a symbolic link; zip the image files themselves")
        parts = tuple(p for p in PurePosixPath(name).parts if p != ".")
        if not parts or parts[0] == _MACOS_DIR or _is_junk(parts[-1]) or info.is_dir():
            continue
        if parts[-1].lower().endswith(".zip"):
            raise UploadError(f"{where} is a zip inside the zip; upload one zip that holds the PNG files")
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            raise UploadError(f"{where} uses unsupported compression method {info.compress_type}; re-create the zip with deflate")
        key = "/".join(parts).lower()
        if key in seen:
            raise UploadError(f"{where} appears twice in the zip (also as '{seen[key]}'); keep one copy")
        seen[key] = name
        if len(files) >= limits.max_members:
            raise UploadError(f"{zip_path}: more than {limits.max_members} files; upload only the SR images")
        if info.file_size > limits.max_member_bytes:
            raise UploadError(f"{where} declares {info.file_size} bytes uncompressed, over the {limits.max_member_bytes}-byte limit per file")
        if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise UploadError(
                f"{where} expands {ratio:.0f}:1 ({info.compress_size} -> {info.file_size} bytes), over the "
                f"{limits.max_ratio:g}:1 limit (a zip bomb?); zip the PNG files as they are"
            )
        declared_total += info.file_size
        if declared_total > limits.max_total_bytes:
            raise UploadError(f"{zip_path}: declares over {limits.max_total_bytes} bytes uncompressed in total (at member '{name}'); upload only the SR images")
        files.append((info, parts))
    if not files:
        raise UploadError(f"{zip_path}: holds no files (only folders or macOS metadata); zip the SR images")
    return files


def _layout_prefix(zip_path: Path, all_parts: list[tuple[str, ...]]) -> int:
    """How many leading folders to strip: 0 (images at the root) or 1 (one top-level folder)."""
    at_root = [parts for parts in all_parts if len(parts) == 1]
    nested = [parts for parts in all_parts if len(parts) > 1]
    if not nested:
        return 0
    too_deep = next((parts for parts in nested if len(parts) > 2), None)
    if too_deep is not None:
        raise UploadError(
            f"{zip_path}: member '{'/'.join(too_deep)}' is nested {len(too_deep) - 1} folders deep; "
            f"put the images at the zip root or inside one top-level folder"
        )
    tops = sorted({parts[0] for parts in nested})
    if len(tops) > 1:
        listed = ", ".join(f"'{t}/'" for t in tops[:3]) + (", ..." if len(tops) > 3 else "")
        raise UploadError(f"{zip_path}: several top-level folders ({listed}); put all the images in one folder or at the zip root")
    if at_root:
        raise UploadError(
            f"{zip_path}: files both at the zip root ('{at_root[0][0]}') and in folder '{tops[0]}/'; "
            f"put all the images in one place"
        )
    return 1


def _stream_member(
    zip_path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, total: int, limits: UploadLimits
) -> int:
    """Copy one member, counting the bytes really written, since headers can lie.

    CPython's zipfile stops at the declared size and then fails the CRC check, so an
    understated size surfaces as "corrupt"; an overstated one as a short member. The byte
    caps are checked again here so that they hold whatever the reader does.
    """
    where = f"{zip_path}: member '{info.filename}'"
    written = 0
    try:
        with archive.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(_CHUNK):
                if written == 0 and chunk.startswith(_ZIP_MAGIC):
                    raise UploadError(f"{where} is a zip archive inside the zip; upload one zip that holds the PNG files")
                written += len(chunk)
                total += len(chunk)
                if written > info.file_size:
                    raise UploadError(f"{where} expands past the {info.file_size} bytes its header declares; the zip is corrupt or crafted")
                if written > limits.max_member_bytes:
                    raise UploadError(f"{where} expands past the {limits.max_member_bytes}-byte limit per file")
                if total > limits.max_total_bytes:
                    raise UploadError(f"{zip_path}: expands past {limits.max_total_bytes} bytes in total (at member '{info.filename}')")
                out.write(chunk)
    except UploadError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise UploadError(f"{where} is corrupt ({one_line(exc, with_type=False)}); re-create the zip") from None
    except OSError as exc:
        raise UploadError(f"{where} cannot be extracted ({exc.strerror or exc}); check free disk space in the work folder") from None
    if written != info.file_size:
        raise UploadError(f"{where} holds {written} bytes but its header declares {info.file_size}; the zip is corrupt or crafted")
    return total


# --------------------------------------------------------------------------- match_uploads


def match_uploads(upload_dir: Path, hr_names: Sequence[str], scale: int = 4) -> UploadMatch:
    """Pair the files of ``upload_dir`` with HR image names the NTIRE way.

    ``0801x4.png`` (LR name) and ``0801.png`` (HR name) both stand for HR ``0801``; names
    may be given with or without an image suffix. Problems: a missing image (one per HR
    name), an extra file (not an image, or no HR partner), two files for one HR image, a
    non-PNG image, a folder or symbolic link. Pairs follow the order of ``hr_names``.
    """
    upload_dir = Path(upload_dir)
    if not upload_dir.is_dir():
        raise UploadError(f"{upload_dir}: not a folder; call open_upload first")
    hr_stems = [_stem_of(name) for name in hr_names]
    duplicated = sorted({s for s in hr_stems if hr_stems.count(s) > 1})
    if duplicated:
        raise ValueError(f"match_uploads: HR name {duplicated[0]!r} is listed twice")
    hr_set = set(hr_stems)
    candidates: dict[str, list[Path]] = {}
    accounted: set[str] = set()  # HR names already covered by a problem about a wrongly saved file
    problems: list[UploadProblem] = []

    def problem(file: str, text: str) -> None:
        problems.append(UploadProblem(file, f"{file}: {text}"))

    for entry in sorted(upload_dir.iterdir(), key=lambda p: p.name):
        name = entry.name
        if _is_junk(name) or name in (_MACOS_DIR, CODABENCH_METADATA_FILE):
            continue
        if entry.is_symlink():
            problem(name, "is a symbolic link; upload the image file itself")
            continue
        if entry.is_dir():
            problem(name, "is a folder inside the upload; put all the images directly in one folder, no sub-folders")
            continue
        if not entry.is_file():
            problem(name, "is not a regular file; upload PNG images only")
            continue
        suffix = entry.suffix.lower()
        stem = entry.stem
        scaled = _SCALED_STEM.match(stem)
        if stem in hr_set:
            hr = stem
        elif scaled and scaled["base"] in hr_set:
            hr = scaled["base"]
            if int(scaled["scale"]) != scale:
                accounted.add(hr)
                problem(name, f"is named for x{scaled['scale']}, but this is an x{scale} challenge; "
                              f"upload the x{scale} output as {hr}x{scale}.png")
                continue
        else:
            hr = None
        if suffix == ".png" and hr is not None:
            candidates.setdefault(hr, []).append(entry)
        elif suffix in _OTHER_IMAGE_SUFFIXES and hr is not None:
            accounted.add(hr)
            problem(name, f"is {suffix[1:].upper()}, not PNG; SR outputs must be lossless PNG "
                          f"(compression changes the pixels and the PSNR); save it as {hr}x{scale}.png")
        elif suffix == ".png" or suffix in _OTHER_IMAGE_SUFFIXES:
            problem(name, f"has no HR partner in this set{_suggest(stem, hr_stems, scale)}; "
                          f"name each output after its LR input, e.g. {hr_stems[0] if hr_stems else '0801'}x{scale}.png")
        else:
            problem(name, "is not an image; upload only the PNG outputs")

    match = UploadMatch(problems=problems)
    for hr in hr_stems:
        found = candidates.get(hr, [])
        if len(found) == 1:
            match.pairs.append((hr, found[0]))
        elif len(found) > 1:
            names = " and ".join(p.name for p in found)
            problem(found[0].name, f"{names} both stand for HR image {hr}; keep only {hr}x{scale}.png")
        elif hr not in accounted:
            problem(f"{hr}x{scale}.png", f"missing: no upload for HR image {hr} (expected {hr}x{scale}.png or {hr}.png)")
    problems.sort(key=lambda p: p.file)
    return match


def _stem_of(name: str) -> str:
    path = PurePosixPath(name)
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else name


def _suggest(stem: str, hr_stems: list[str], scale: int) -> str:
    hint = did_you_mean(f"{stem}.png", [f"{s}.png" for s in hr_stems] + [f"{s}x{scale}.png" for s in hr_stems])
    return f" ({hint})" if hint else ""


