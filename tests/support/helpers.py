"""Small data the tests make themselves: tiny LR/HR sets and a datasets.yaml naming them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ntire_bench.data.images import write_image


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random colour image, so that upscaling methods give sensible PSNRs."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def make_dataset(root: Path, count: int = 3, hr_size: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    """Write ``count`` HR images and their x4 LR partners under root/HR and root/LR."""
    (root / "HR").mkdir(parents=True, exist_ok=True)
    (root / "LR").mkdir(parents=True, exist_ok=True)
    height, width = hr_size
    for i in range(count):
        hr = smooth_image(height, width, seed + i)
        lr = cv2.resize(hr, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
        write_image(root / "HR" / f"{i + 1:04d}.png", hr)
        write_image(root / "LR" / f"{i + 1:04d}x4.png", lr)
    return root


def write_registry(path: Path, datasets: dict[str, Path], thresholds: dict[str, float] | None = None) -> Path:
    """A datasets.yaml naming each dataset root (HR/ and LR/ inside)."""
    lines = ["datasets:"]
    for name, root in datasets.items():
        lines.append(f"  {name}:")
        lines.append(f"    hr: {root / 'HR'}")
        lines.append(f"    lr: {root / 'LR'}")
        if thresholds and name in thresholds:
            lines.append(f"    threshold: {thresholds[name]}")
    path.write_text("\n".join(lines) + "\n")
    return path
