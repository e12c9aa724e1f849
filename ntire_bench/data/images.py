"""Image file I/O: 8-bit RGB in, 8-bit RGB out, one-line errors that name the file.

Images are read the way the official NTIRE code reads them (OpenCV, then BGR -> RGB,
grey replicated to three channels) so that metrics are computed on the same pixels.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np

PathLike = str | os.PathLike

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_JPEG_SOS = b"\xff\xda"


class ImageError(ValueError):
    """An image file cannot be used; the message is one line that names the file."""


def _check_complete(path: PathLike, data: bytes) -> None:
    # OpenCV decodes a truncated JPEG (and a PNG cut after its last IDAT) into a partly
    # grey image with only a libjpeg/libpng warning on stderr, so check the end markers.
    # Bytes after the end marker (camera trailers, padding) are allowed.
    if data.startswith(_PNG_SIGNATURE):
        if data.rfind(b"IEND") < data.rfind(b"IDAT"):
            raise ImageError(f"{path}: truncated PNG (no IEND chunk after the image data); re-export or re-download the file")
    elif data.startswith(_JPEG_SOI):
        # In entropy-coded data 0xFF is always escaped, so an FFD9 after the last start
        # of scan (FFDA) is the image's own end marker, not one from an EXIF thumbnail.
        if data.rfind(_JPEG_EOI) < data.rfind(_JPEG_SOS):
            raise ImageError(f"{path}: truncated JPEG (no end-of-image marker); re-export or re-download the file")


def read_image(path: PathLike) -> np.ndarray:
    """Read a PNG/JPEG/BMP file as an HxWx3 uint8 RGB array.

    Grey images become three identical channels; an alpha channel is dropped with a
    warning. 16-bit or float images, and missing, unreadable, corrupt or truncated
    files raise ``ImageError``.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such image file; check the dataset path")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if not data:
        raise ImageError(f"{path}: empty file; re-export or re-download it")
    _check_complete(path, data)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageError(f"{path}: not a decodable image (corrupt or unsupported format); use 8-bit PNG, JPEG or BMP")
    if img.dtype != np.uint8:
        bits = {np.dtype(np.uint16): "16-bit", np.dtype(np.float32): "32-bit float"}.get(img.dtype, str(img.dtype))
        raise ImageError(f"{path}: {bits} image; convert it to 8 bits per channel")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    channels = img.shape[2]
    if channels == 2:  # grey + alpha
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=2)
        return np.ascontiguousarray(np.repeat(img[:, :, :1], 3, axis=2))
    if channels == 4:
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=2)
        img = img[:, :, :3]
    elif channels != 3:
        raise ImageError(f"{path}: {channels}-channel image; use grey, RGB or RGBA")
    return np.ascontiguousarray(img[:, :, ::-1])


def write_image(path: PathLike, rgb: np.ndarray) -> None:
    """Write an HxWx3 (or HxW) uint8 RGB array to ``path`` (PNG unless the suffix says otherwise)."""
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ImageError(f"{path}: refusing to write a {rgb.dtype} array; quantize it to uint8 first")
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    elif rgb.ndim == 2:
        bgr = rgb
    else:
        raise ImageError(f"{path}: refusing to write an array of shape {rgb.shape}; expected HxWx3 RGB")
    suffix = path.suffix.lower() or ".png"
    ok, buf = cv2.imencode(suffix, bgr)
    if not ok:
        raise ImageError(f"{path}: OpenCV cannot encode {suffix!r}; use a .png file name")
    try:
        path.write_bytes(buf.tobytes())
    except OSError as exc:
        raise ImageError(f"{path}: cannot be written ({exc.strerror or exc}); check the directory exists and is writable") from None


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale``, keeping the top-left corner."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def check_pair(lr: np.ndarray, hr: np.ndarray, scale: int, lr_path: PathLike, hr_path: PathLike) -> None:
    """Raise ``ImageError`` unless ``lr`` times ``scale`` matches the modcropped ``hr``."""
    lh, lw = lr.shape[:2]
    hh, hw = modcrop(hr, scale).shape[:2]
    if (lh * scale, lw * scale) != (hh, hw):
        raise ImageError(
            f"{lr_path} ({lh}x{lw}) x{scale} = {lh * scale}x{lw * scale} does not match {hr_path} "
            f"({hr.shape[0]}x{hr.shape[1]}, {hh}x{hw} after cropping to a multiple of {scale}); "
            f"check the LR/HR pairing and the scale"
        )
