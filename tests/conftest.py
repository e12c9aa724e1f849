"""Shared fixtures: the ../shared benchmark material, skipped cleanly when absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is missing: the ../shared benchmark material is not beside this checkout")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def model_zoo(shared_dir: Path) -> Path:
    return _require(shared_dir / "model_zoo")


@pytest.fixture(scope="session")
def shared_data(shared_dir: Path) -> Path:
    return _require(shared_dir / "data")


@pytest.fixture(scope="session")
def set5_reference(shared_dir: Path) -> dict:
    return json.loads(_require(shared_dir / "reference" / "set5_reference.json").read_text())


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="no CUDA device on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
