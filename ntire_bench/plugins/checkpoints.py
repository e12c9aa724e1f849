"""Where a submission's checkpoint is: the model zoo search path (``--model-zoo``, ``$NTIRE_BENCH_MODEL_ZOO``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


MODEL_ZOO_ENV = "NTIRE_BENCH_MODEL_ZOO"


def model_zoo_dirs(explicit: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The model zoo search path: ``--model-zoo`` options first, then ``$NTIRE_BENCH_MODEL_ZOO``."""
    dirs = [Path(d) for d in explicit]
    env = os.environ.get(MODEL_ZOO_ENV, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d]
    return dirs


def resolve_checkpoint(checkpoint: str | None, zoo_dirs: Iterable[Path], base: Path | None = None) -> Path | None:
    """The checkpoint's absolute path: as given when absolute, under ``base`` (an NTIRE checkout), or in the
    first zoo directory that has it; None when it is nowhere."""
    if not checkpoint:
        return None
    candidate = Path(checkpoint)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for directory in ([base] if base is not None else []) + list(zoo_dirs):
        path = Path(directory) / candidate
        if path.is_file():
            return path.resolve()  # workers run in their own directory
    return None
