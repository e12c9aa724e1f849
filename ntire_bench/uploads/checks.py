"""Checks of one uploaded SR image: its PNG header, then its decoded pixels.

``check_upload_header`` reads only a PNG's first chunks (size, bit depth, colour type, a tRNS
chunk), so scoring can reject a wrong file before decoding anything and then decode each good
file exactly once (evaluate.py); ``check_upload_image`` is the same check plus the decode. A
bad image never raises: it becomes an ``UploadProblem`` (uploads.py) with one line that says
what is wrong and what was expected.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ntire_bench.data.images import ImageError, read_image
from ntire_bench.uploads.intake import UploadProblem

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}
# Image formats recognised by their first bytes, to name what a non-PNG file really is.
_FORMAT_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"PK\x03\x04", "zip archive"),
)
# When a size is LR x k for some other k, say so; larger factors are never plausible.
_MAX_SCALE_GUESS = 8


@dataclass(frozen=True)
class PngHeader:
    """What a PNG's first chunks say: size, bit depth, colour type, and a tRNS (transparency) chunk."""

    height: int
    width: int
    bit_depth: int
    colour_type: int
    transparency: bool = False

    @property
    def kind(self) -> str:
        return _PNG_COLOUR_TYPES.get(self.colour_type, f"colour type {self.colour_type}")

    @property
    def grey(self) -> bool:
        return self.colour_type in (0, 4)


# A tRNS chunk must come before the first IDAT; stop looking after this many chunks.
_MAX_HEADER_CHUNKS = 64


def _read_png_header(path: Path) -> tuple[PngHeader | None, str | None]:
    """The header of a PNG file, or a one-line reason (without the file name) why there is none."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
            if not head:
                return None, "empty file; re-export the image"
            if not head.startswith(_PNG_SIGNATURE):
                kind = next((label for magic, label in _FORMAT_MAGIC if head.startswith(magic)), None)
                if kind is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                    kind = "WebP"
                what = f"is a {kind} file, not a PNG" if kind else "is not a PNG file (unrecognised content)"
                return None, f"{what}; save the SR output as an 8-bit RGB PNG"
            if len(head) < 33 or head[12:16] != b"IHDR":
                return None, "corrupt PNG (no IHDR header); re-export the image"
            width, height, bit_depth, colour_type = struct.unpack(">IIBB", head[16:26])
            transparency = False
            for _ in range(_MAX_HEADER_CHUNKS):  # chunk headers only: a few small reads, no pixel data
                chunk = handle.read(8)
                if len(chunk) < 8:
                    break
                length, chunk_type = struct.unpack(">I4s", chunk)
                if chunk_type in (b"IDAT", b"IEND") or not chunk_type.isalpha():
                    break  # a damaged chunk list is left for the decoder to report
                if chunk_type == b"tRNS":
                    transparency = True
                    break
                handle.seek(length + 4, 1)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc}); re-upload the file"
    return PngHeader(height, width, bit_depth, colour_type, transparency), None


def read_png_header(path: Path) -> PngHeader | None:
    """The header of a PNG file, or None when the file is unreadable or not a PNG."""
    header, _ = _read_png_header(Path(path))
    return header


def check_upload_header(
    path: Path,
    expected_hw: tuple[int, int],
    scale: int,
    lr_hw: tuple[int, int] | None = None,
    *,
    allow_grey: bool = False,
) -> UploadProblem | None:
    """Check an uploaded SR image from its PNG header alone (no pixel is decoded); None when it may be scored.

    The same checks and reasons as :func:`check_upload_image` before it decodes: not a PNG,
    wrong size or scale, greyscale, 16-bit, alpha or transparency. A file that passes may
    still fail to decode (truncated, corrupt data), which only decoding can tell.
    """
    name = Path(path).name
    header, reason = _read_png_header(Path(path))
    if header is None:
        return UploadProblem(name, f"{name}: {reason}")
    size_problem = _size_problem((header.height, header.width), expected_hw, scale, lr_hw)
    if size_problem:
        return UploadProblem(name, f"{name}: {size_problem}")
    if header.colour_type not in _PNG_COLOUR_TYPES:
        return UploadProblem(name, f"{name}: corrupt PNG (invalid colour type {header.colour_type}); re-export the image")
    grey_ok = allow_grey and header.colour_type == 0
    fix = "save the SR output as an 8-bit RGB PNG (3 channels, no alpha)"
    if header.bit_depth == 16 or header.colour_type in (4, 6) or (header.colour_type == 0 and not grey_ok):
        return UploadProblem(name, f"{name}: {header.bit_depth}-bit {header.kind} PNG; {fix}")
    if header.transparency and header.colour_type in (2, 3):  # decoded with an alpha channel
        return UploadProblem(name, f"{name}: {header.bit_depth}-bit {header.kind} PNG with transparency; {fix}")
    return None


def check_upload_image(
    path: Path,
    expected_hw: tuple[int, int],
    scale: int,
    lr_hw: tuple[int, int] | None = None,
    *,
    allow_grey: bool = False,
) -> tuple[np.ndarray | None, UploadProblem | None]:
    """Decode one uploaded SR image, or say precisely why it cannot be scored.

    ``expected_hw`` is the HR size (height, width) after cropping to a multiple of the
    scale; ``lr_hw`` the LR input's size (derived from ``expected_hw`` when omitted), used
    to recognise an output at the wrong scale. Returns ``(HxWx3 uint8 RGB, None)`` or
    ``(None, problem)``; it never raises for a bad file. The PNG header is checked before
    decoding (:func:`check_upload_header`), so a wrong-size, grey, alpha or 16-bit file is
    reported without decoding it. ``allow_grey`` accepts 8-bit greyscale PNGs (for sets
    whose HR is grey).
    """
    path = Path(path)
    name = path.name

    def bad(text: str) -> tuple[None, UploadProblem]:
        return None, UploadProblem(name, f"{name}: {text}")

    problem = check_upload_header(path, expected_hw, scale, lr_hw, allow_grey=allow_grey)
    if problem is not None:
        return None, problem
    header = read_png_header(path)
    assert header is not None  # the header check passed
    height, width, bit_depth, kind = header.height, header.width, header.bit_depth, header.kind

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            image = read_image(path)
        except ImageError as exc:
            return bad(str(exc).removeprefix(f"{path}: "))
    if any("alpha" in str(w.message) for w in caught):
        return bad(f"{bit_depth}-bit {kind} PNG with transparency; save the SR output as an 8-bit RGB PNG (3 channels, no alpha)")
    if image.shape[:2] != (height, width):  # the header and the pixels disagree
        return bad(f"corrupt PNG (header says {height}x{width}, the data decodes to {image.shape[0]}x{image.shape[1]}); re-export the image")
    return image, None


def _size_problem(
    actual: tuple[int, int], expected: tuple[int, int], scale: int, lr_hw: tuple[int, int] | None
) -> str | None:
    if actual == expected:
        return None
    ah, aw = actual
    eh, ew = expected
    if lr_hw is None and eh % scale == 0 and ew % scale == 0:
        lr_hw = (eh // scale, ew // scale)
    if lr_hw is not None:
        lh, lw = lr_hw
        for k in range(1, _MAX_SCALE_GUESS + 1):
            if k != scale and (ah, aw) == (lh * k, lw * k):
                looks = "is the size of the LR input (x1)" if k == 1 else f"looks like an x{k} output (LR {lh}x{lw} x{k})"
                return f"wrong scale: {ah}x{aw} (HxW) {looks}; expected the x{scale} output, {eh}x{ew}"
    if (ah, aw) == (ew, eh):
        return f"wrong size {ah}x{aw} (HxW): height and width are swapped; expected {eh}x{ew}"
    return f"wrong size {ah}x{aw} (HxW); expected {eh}x{ew}, the size of the HR image"


