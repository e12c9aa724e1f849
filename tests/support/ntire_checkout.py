"""The synthetic checkout in the official NTIRE layout (tests/support/fixtures/ntire_checkout): its own tools, and
a copy of it with its checkpoints written, as the tests import it."""

from __future__ import annotations

import importlib.util
import shutil
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from support.paths import FIXTURES

FIXTURE = FIXTURES / "ntire_checkout"


@lru_cache(maxsize=None)
def fixture_tools() -> ModuleType:
    """The fixture's make_checkpoints.py (``make_checkpoints``, ``checkout_importable``), loaded once."""
    spec = importlib.util.spec_from_file_location("ntire_fixture_make_checkpoints", FIXTURE / "make_checkpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkout_with_checkpoints(into: Path) -> Path:
    """A copy of the fixture checkout under ``into`` with its checkpoints written (team 25's stays absent)."""
    copy = into / "checkout"
    shutil.copytree(FIXTURE, copy, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    fixture_tools().make_checkpoints(copy)
    return copy.resolve()
