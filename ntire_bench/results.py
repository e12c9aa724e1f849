"""Results files: one JSON per submission, written atomically, read back defensively.

The format is documented in docs/results-format.md. A file that is not valid JSON, or
not one of ours, is never overwritten: it is renamed aside and reported.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

SCHEMA = "ntire-bench/results/v1"
STATUSES = ("ok", "no_weights", "failed")


class ResultsError(ValueError):
    """A results file or directory is unusable; the message is one line naming it."""


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to ``path`` so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, allow_nan=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Make the rename itself durable, so a crash right after cannot resurrect the old file.
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_results_file(path: Path) -> dict[str, Any]:
    """Parse and check one results file; raise ResultsError saying what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror})") from exc
    except ValueError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: not an ntire-bench results file (expected schema {SCHEMA!r})")
    if not isinstance(data.get("submission"), str) or data.get("status") not in STATUSES:
        raise ResultsError(f"{path}: field 'submission' or 'status' is missing or invalid")
    if not isinstance(data.get("datasets", {}), dict):
        raise ResultsError(f"{path}: field 'datasets' must be an object")
    return data


def set_aside(path: Path, reason: str, label: str = "bad") -> Path:
    """Rename a results file out of the way as ``<name>.<label>-<time>`` (never delete it) and warn."""
    path = Path(path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{label}-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    warnings.warn(f"{reason}; moved it to {target.name}", stacklevel=2)
    return target


def load_existing(path: Path) -> dict[str, Any] | None:
    """The results already stored for one submission, or None; bad files are set aside."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return read_results_file(path)
    except ResultsError as exc:
        set_aside(path, str(exc))
        return None


def load_results(results_dir: Path, strict: bool = False) -> list[dict[str, Any]]:
    """Every results file in a directory, sorted by submission.

    A bad file is set aside with a warning, or, with ``strict``, raises ResultsError and
    nothing is moved (a CI gate must not pass on a second look at the same directory).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(f"{results_dir}: no such results directory; run `ntire-bench run` first or pass --results DIR")
    loaded = []
    for path in sorted(results_dir.glob("*.json")):
        if strict:
            try:
                data = read_results_file(path)
            except ResultsError as exc:
                raise ResultsError(f"{exc}; re-run that submission or remove the file") from None
        else:
            data = load_existing(path)
        if data is not None:
            data.setdefault("_path", str(path))
            loaded.append(data)
    if not loaded:
        raise ResultsError(f"{results_dir}: holds no results files; run `ntire-bench run` first")
    return sorted(loaded, key=lambda d: d["submission"])


def results_path(out_dir: Path, submission: str) -> Path:
    """Where a submission's results live."""
    return Path(out_dir) / f"{submission}.json"
