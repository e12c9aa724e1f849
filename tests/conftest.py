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


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the slow acceptance runs (a whole NTIRE checkout on Set5; minutes on a CPU)")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="no CUDA device on this machine")
    skip_slow = pytest.mark.skip(reason="slow acceptance run: pass --run-slow (make test-slow)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)
