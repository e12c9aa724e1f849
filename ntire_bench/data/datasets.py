"""Datasets: the ``datasets.yaml`` registry, LR/HR pairing, generated LR, and the demo set.

A dataset entry names an HR directory, optionally an LR directory (NTIRE pairing
``0801.png`` <-> ``0801x4.png``), the scale and an optional PSNR threshold. Paths may use
``${VAR}`` or ``${VAR:-default}`` and are relative to the YAML file. When no LR directory
is given (or it does not exist), LR is made from HR with the MATLAB-compatible bicubic
downscale and cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from ntire_bench.data.images import modcrop, read_image, write_image
from ntire_bench.util.hashing import sha256_file
from ntire_bench.util.text import one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEMO_NAME = "demo"
CACHE_ENV = "NTIRE_BENCH_CACHE"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Six photos that ship inside scikit-image, so the demo works offline (camera is grey).
DEMO_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "coins", "rocket")
# Demo HR is a central crop of at most this size, so `make run` stays quick on a CPU.
DEMO_MAX_SIDE = 256


class DatasetError(ValueError):
    """A dataset entry or its files are unusable; the message is one line."""


@dataclass(frozen=True)
class DatasetSpec:
    """One named evaluation set as declared in datasets.yaml."""

    name: str
    hr_dir: str
    lr_dir: str | None = None
    scale: int = 4
    threshold: float | None = None
    description: str = ""
    base_dir: str = "."

    def hr_path(self) -> Path:
        return _expand(self.hr_dir, self, "hr_dir")

    def lr_path(self) -> Path | None:
        return _expand(self.lr_dir, self, "lr_dir") if self.lr_dir else None


@dataclass(frozen=True)
class ImagePair:
    """An LR input and its HR ground truth. Only ``lr_path`` may ever reach a submission."""

    name: str
    lr_path: Path
    hr_path: Path


def default_cache_dir() -> Path:
    """Where generated LR and the demo images live: ``$NTIRE_BENCH_CACHE`` or ~/.cache/ntire-bench."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ntire-bench")


def _expand(raw: str, spec: DatasetSpec, field_name: str) -> Path:
    def substitute(match: re.Match) -> str:
        var, default = match.group(1), match.group(2)
        value = os.environ.get(var) or default
        if value is None:
            raise DatasetError(
                f"dataset {spec.name}: {field_name} uses ${{{var}}}, which is not set; "
                f"export {var}=/path/to/data or edit datasets.yaml"
            )
        return value

    path = Path(os.path.expanduser(_VAR.sub(substitute, raw)))
    return path if path.is_absolute() else (Path(spec.base_dir) / path).resolve()


def _demo_spec() -> DatasetSpec:
    return DatasetSpec(
        name=DEMO_NAME,
        hr_dir=str(default_cache_dir() / "demo" / f"HR-{DEMO_MAX_SIDE}"),
        lr_dir=None,
        scale=4,
        description="central crops (at most 256x256) of six photos bundled with scikit-image; "
        "LR generated with MATLAB bicubic",
    )


def load_dataset_specs(path: str | os.PathLike | None = None) -> dict[str, DatasetSpec]:
    """Read a datasets.yaml (if given) and add the built-in ``demo`` set."""
    specs = {DEMO_NAME: _demo_spec()}
    if path is None:
        return specs
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror}); pass --datasets-file FILE") from exc
    except yaml.YAMLError as exc:
        raise DatasetError(f"{path}: invalid YAML: {one_line(exc, with_type=False)}") from exc
    entries = (raw or {}).get("datasets", raw) if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise DatasetError(f"{path}: expected a mapping 'datasets: {{NAME: {{hr: ..., lr: ..., scale: 4}}}}'")
    for name, entry in entries.items():
        specs[str(name)] = _parse_entry(str(name), entry, path)
    return specs


def _parse_entry(name: str, entry: Any, path: Path) -> DatasetSpec:
    where = f"{path}: datasets.{name}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected a mapping with hr, lr, scale, threshold")
    unknown = set(entry) - {"hr", "lr", "scale", "threshold", "description"}
    if unknown:
        raise DatasetError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: hr, lr, scale, threshold, description")
    if "hr" not in entry:
        raise DatasetError(f"{where}.hr: missing; give the HR image directory")
    scale = entry.get("scale", 4)
    if not isinstance(scale, int) or scale < 1:
        raise DatasetError(f"{where}.scale: expected a positive integer, got {scale!r}")
    threshold = entry.get("threshold")
    if threshold is not None and not isinstance(threshold, (int, float)):
        raise DatasetError(f"{where}.threshold: expected a number of dB, got {threshold!r}")
    return DatasetSpec(
        name=name,
        hr_dir=str(entry["hr"]),
        lr_dir=str(entry["lr"]) if entry.get("lr") else None,
        scale=scale,
        threshold=float(threshold) if threshold is not None else None,
        description=str(entry.get("description", "")),
        base_dir=str(path.resolve().parent),
    )


def _images_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def ensure_demo_images(cache_dir: Path | None = None) -> Path:
    """Write the demo HR images (central crops, sides a multiple of 4) into the cache, once."""
    hr_dir = (cache_dir or default_cache_dir()) / "demo" / f"HR-{DEMO_MAX_SIDE}"
    if hr_dir.is_dir() and len(_images_in(hr_dir)) == len(DEMO_IMAGES):
        return hr_dir
    import numpy as np
    import skimage.data

    hr_dir.mkdir(parents=True, exist_ok=True)
    for name in DEMO_IMAGES:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        height, width = (min(side, DEMO_MAX_SIDE) for side in image.shape[:2])
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        crop = image[top : top + height, left : left + width, :3]
        write_image(hr_dir / f"{name}.png", modcrop(np.ascontiguousarray(crop), 4))
    return hr_dir


def resolve_pairs(spec: DatasetSpec, cache_dir: Path | None = None, progress: bool = False) -> list[ImagePair]:
    """List the LR/HR pairs of a dataset, generating (and caching) LR when there is none."""
    if spec.name == DEMO_NAME:
        ensure_demo_images(cache_dir)
    hr_dir = spec.hr_path()
    if not hr_dir.is_dir():
        raise DatasetError(f"dataset {spec.name}: HR directory {hr_dir} does not exist; fix datasets.yaml")
    hr_files = _images_in(hr_dir)
    if not hr_files:
        raise DatasetError(f"dataset {spec.name}: no PNG/JPEG/BMP images in {hr_dir}")
    lr_dir = spec.lr_path()
    if lr_dir is None or not lr_dir.is_dir():
        lr_dir = generate_lr(spec, hr_files, cache_dir, progress=progress)
    lr_by_stem = {p.stem: p for p in _images_in(lr_dir)}
    pairs = []
    for hr in hr_files:
        stem = f"{hr.stem}x{spec.scale}"
        lr = lr_by_stem.pop(stem, None)
        if lr is None:
            raise DatasetError(f"{hr}: no LR partner {stem}.png in {lr_dir}")
        pairs.append(ImagePair(name=hr.stem, lr_path=lr, hr_path=hr))
    if lr_by_stem:
        orphan = lr_dir / sorted(lr_by_stem.values())[0].name
        raise DatasetError(f"{orphan}: LR image has no HR partner in {hr_dir}")
    return pairs


def generate_lr(
    spec: DatasetSpec, hr_files: list[Path], cache_dir: Path | None = None, progress: bool = False
) -> Path:
    """Make LR images from HR with the MATLAB-style bicubic downscale, cached by HR content."""
    from tqdm import tqdm

    from ntire_bench.data.imresize import downscale_uint8

    hr_dir = spec.hr_path()
    key = hashlib.sha256(f"{hr_dir}|x{spec.scale}".encode()).hexdigest()[:16]
    out_dir = (cache_dir or default_cache_dir()) / "lr" / f"{spec.name}-{key}"
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    changed = False
    for hr in tqdm(hr_files, desc=f"LR for {spec.name}", unit="img", disable=not progress, leave=False):
        digest = sha256_file(hr)
        target = out_dir / f"{hr.stem}x{spec.scale}.png"
        if manifest.get(hr.name) == digest and target.is_file():
            continue
        hr_image = modcrop(read_image(hr), spec.scale)
        write_image(target, downscale_uint8(hr_image, spec.scale))
        manifest[hr.name] = digest
        changed = True
    stale = {p.name for p in _images_in(out_dir)} - {f"{h.stem}x{spec.scale}.png" for h in hr_files}
    for name in stale:
        (out_dir / name).unlink()
    if changed:
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, manifest_path)
    return out_dir


def dataset_fingerprint(pairs: Iterable[ImagePair]) -> str:
    """One hash over the file names and contents of every LR and HR image of a dataset."""
    digest = hashlib.sha256()
    for pair in pairs:
        for path in (pair.lr_path, pair.hr_path):
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def read_hr(pair: ImagePair, lr, scale: int):
    """Read a pair's HR image, cropped to a multiple of ``scale``, checked against its decoded LR.

    Raises ImageError naming both files when their sizes disagree.
    """
    from ntire_bench.data.images import check_pair

    hr = modcrop(read_image(pair.hr_path), scale)
    check_pair(lr, hr, scale, pair.lr_path, pair.hr_path)
    return hr


def validate_pairs(pairs: Iterable[ImagePair], scale: int, progress: bool = False) -> None:
    """Decode every LR and HR image once and check their sizes, so bad data fails before any model runs."""
    from tqdm import tqdm

    pairs = list(pairs)
    for pair in tqdm(pairs, desc="checking images", unit="pair", disable=not progress, leave=False):
        read_hr(pair, read_image(pair.lr_path), scale)


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset resolved to its checked pairs, with the fingerprint of its files."""

    spec: DatasetSpec
    pairs: list[ImagePair]
    fingerprint: str


def prepare_datasets(specs: Iterable[DatasetSpec], cache_dir: Path | None = None, progress: bool = True
                     ) -> list[PreparedDataset]:
    """Resolve and check every dataset up front, so a bad path or image fails before any model runs."""
    prepared = []
    for spec in specs:
        pairs = resolve_pairs(spec, cache_dir=cache_dir, progress=progress)
        validate_pairs(pairs, spec.scale, progress=progress)
        prepared.append(PreparedDataset(spec, pairs, dataset_fingerprint(pairs)))
    return prepared
