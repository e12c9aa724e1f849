"""The results store: one JSON file per submission in a directory, and the resume plan.

Reading never changes anything on disk: a file that cannot be used is reported as a
``FileProblem``. Moving a file out of the way is a separate, explicit ``set_aside`` that
returns what it did, so callers report it as data. Writes are atomic (temporary file,
fsync, rename), so a killed run leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ntire_bench.results.records import FAILED, DatasetResult, RecordError, SubmissionResult


class ResultsError(ValueError):
    """A results file or directory is unusable; the message is one line naming it."""


@dataclass(frozen=True)
class FileProblem:
    """A results file that cannot be used, and why."""

    path: Path
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class SetAside:
    """A results file renamed out of the way (never deleted), and why."""

    path: Path
    moved_to: Path
    reason: str

    def line(self) -> str:
        return f"{self.reason}; moved {self.path.name} to {self.moved_to.name}"


@dataclass
class LoadedResults:
    """Every usable result in a directory, and the files that were not usable."""

    results: list[SubmissionResult]
    problems: list[FileProblem] = field(default_factory=list)


@dataclass
class ResumePlan:
    """What a run does for one submission given what the store already holds.

    ``reuse`` are measured datasets to keep as they are (this run's datasets with an
    unchanged cache key, and datasets this run does not name); ``todo`` are the dataset
    names to measure; ``set_aside`` says why the stored file must be moved first, if at all.
    """

    reuse: dict[str, DatasetResult]
    todo: list[str]
    set_aside: str | None = None
    set_aside_label: str = "stale"
    up_to_date: SubmissionResult | None = None


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc


def read_result(path: Path, strict: bool = False) -> SubmissionResult:
    """Parse and check one results file; raise ResultsError saying what is wrong with it."""
    path = Path(path)
    data = _read_json(path)
    try:
        return SubmissionResult.from_json(data, strict=strict, origin=path.name)
    except RecordError as exc:
        raise ResultsError(f"{path}: not an ntire-bench results file: {exc}") from None


def atomic_write_json(path: Path, payload: dict) -> None:
    """Write JSON so readers see the old file or the new one, never half of one (mode 0644 less umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class ResultsStore:
    """The results directory: load, save, set aside, and plan what a re-run must measure."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, submission: str) -> Path:
        """Where a submission's results live."""
        return self.root / f"{submission}.json"

    def read(self, submission: str) -> SubmissionResult | FileProblem | None:
        """The stored result, a FileProblem when the file is unusable, or None when there is none."""
        path = self.path(submission)
        if not path.exists():
            return None
        try:
            return read_result(path)
        except ResultsError as exc:
            return FileProblem(path, str(exc).removeprefix(f"{path}: "))

    def load_all(self, strict: bool = False) -> LoadedResults:
        """Every results file, sorted by submission. ``strict`` raises on the first unusable file."""
        if not self.root.is_dir():
            raise ResultsError(f"{self.root}: no such results directory; run `ntire-bench run` first or pass --results DIR")
        loaded = LoadedResults(results=[])
        for path in sorted(self.root.glob("*.json")):
            try:
                loaded.results.append(read_result(path, strict=False))
            except ResultsError as exc:
                if strict:
                    raise ResultsError(f"{exc}; re-run that submission or remove the file") from None
                loaded.problems.append(FileProblem(path, str(exc).removeprefix(f"{path}: ")))
        if not loaded.results and not loaded.problems:
            raise ResultsError(f"{self.root}: holds no results files; run `ntire-bench run` first")
        loaded.results.sort(key=lambda r: r.submission)
        return loaded

    def save(self, result: SubmissionResult) -> Path:
        """Write ``result`` atomically to its file; return the path."""
        path = self.path(result.submission)
        atomic_write_json(path, result.to_json())
        return path

    def set_aside(self, submission: str, reason: str, label: str = "stale") -> SetAside | None:
        """Rename the stored file to ``<name>.json.<label>-<time>``; None when there is no file."""
        path = self.path(submission)
        if not path.exists():
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.{label}-{stamp}")
        counter = 1
        while target.exists():
            target = path.with_name(f"{path.name}.{label}-{stamp}-{counter}")
            counter += 1
        os.replace(path, target)
        return SetAside(path, target, reason)

    def plan(self, submission: str, run_key: str, dataset_keys: dict[str, str], force: bool = False,
             dependencies_changed: Callable[[SubmissionResult], str | None] = lambda r: None) -> ResumePlan:
        """Decide what to re-use for ``submission`` measured under ``run_key`` on ``dataset_keys``.

        ``dependencies_changed`` returns a reason when a module the stored result imported has
        changed since (the run key cannot know those before the plugin is loaded).
        """
        stored = self.read(submission)
        everything = list(dataset_keys)
        if stored is None:
            return ResumePlan(reuse={}, todo=everything)
        if isinstance(stored, FileProblem):
            return ResumePlan(reuse={}, todo=everything, set_aside=stored.line(), set_aside_label="bad")
        if stored.run_key != run_key:
            return ResumePlan(reuse={}, todo=everything, set_aside=(
                f"{stored.origin} was measured with other code, weights, device or settings"))
        changed = dependencies_changed(stored)
        if changed:
            return ResumePlan(reuse={}, todo=everything, set_aside=f"{stored.origin}: {changed}")
        # Datasets this run does not name stay; those it names are reused when unchanged.
        reuse = {name: result for name, result in stored.datasets.items() if name not in dataset_keys}
        if not force:
            reuse.update({name: result for name, result in stored.datasets.items()
                          if name in dataset_keys and result.cache_key == dataset_keys[name]})
        todo = [name for name in everything if name not in reuse]
        up_to_date = stored if not todo and stored.status not in (FAILED,) and stored.status != "running" else None
        return ResumePlan(reuse=reuse, todo=todo, up_to_date=up_to_date)
