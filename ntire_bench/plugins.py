"""Submission plugins: the declaration, discovery, and checkpoint loading.

A submission is a module (``name.py``) or package (``name/__init__.py``) in a
submissions directory, or an object published under the entry-point group
``ntire_bench.submissions``. The module declares one ``Submission`` as
``SUBMISSION`` (or several as ``SUBMISSIONS``)::

    from ntire_bench.plugins import Submission
    from ntire_bench.archs.rlfn import RLFN

    SUBMISSION = Submission(name="rlfn", team="NTIRE organisers", model=RLFN,
                            checkpoint="ntire2024_rlfn_baseline.pth", data_range=255.0)

Discovery is lazy and isolated: each module is imported on its own, and a module
that fails to import becomes a ``broken`` entry instead of stopping the others.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

ENTRY_POINT_GROUP = "ntire_bench.submissions"
MODEL_ZOO_ENV = "NTIRE_BENCH_MODEL_ZOO"
# Keys under which training frameworks nest the weights (BasicSR, KAIR, plain PyTorch).
STATE_DICT_WRAPPERS = ("params_ema", "params", "state_dict", "model")

ForwardFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class PluginError(Exception):
    """A submission could not be declared, found or loaded; the message is one line."""


@dataclass(frozen=True)
class Submission:
    """What a team declares: a model factory and how to feed it.

    ``checkpoint`` is a file name resolved against the model zoo directories; when it
    is None the model has no weights to load (``requires_weights`` must then be False).
    ``data_range`` is the value of white at the model's input and output (1.0 or 255.0).
    ``pad_to_multiple`` reflect-pads the LR input to a multiple (window attention) and
    crops the output back. ``forward`` replaces ``model(x)`` entirely when given.
    ``reference`` marks a method that is measured and listed but never ranked.
    """

    name: str
    team: str
    model: Callable[[], nn.Module]
    checkpoint: str | None = None
    sha256: str | None = None
    url: str | None = None
    data_range: float = 1.0
    scale: int = 4
    pad_to_multiple: int = 1
    forward: ForwardFn | None = None
    requires_weights: bool = True
    reference: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(f"submission name {self.name!r}: use letters, digits, '_' and '-' only")
        if self.data_range not in (1.0, 255.0):
            raise PluginError(f"submission {self.name}: data_range must be 1.0 or 255.0, got {self.data_range}")
        if self.scale != 4:
            raise PluginError(f"submission {self.name}: only x4 is supported, got scale={self.scale}")
        if self.pad_to_multiple < 1:
            raise PluginError(f"submission {self.name}: pad_to_multiple must be >= 1")
        if self.requires_weights and not self.checkpoint:
            raise PluginError(
                f"submission {self.name}: declare checkpoint=... or set requires_weights=False"
            )
        if not callable(self.model):
            raise PluginError(f"submission {self.name}: model must be a factory (a class or function)")


@dataclass
class PluginEntry:
    """One discovered submission, or the reason it could not be declared."""

    name: str
    source: str  # file path, or "entry-point:<module:attr>"
    submission: Submission | None = None
    error: str | None = None
    source_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.submission is not None

    @property
    def module_ref(self) -> str:
        """What a worker process needs to import this plugin again: a path or module:attr."""
        return self.source


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_source(path: Path) -> str:
    """Hash of a plugin's source: the file, or every .py file of a package."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*.py")):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def one_line(exc: BaseException) -> str:
    """An exception as ``Type: message`` on a single line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _declared(module: Any, where: str) -> list[Submission]:
    found = getattr(module, "SUBMISSIONS", None)
    if found is None:
        single = getattr(module, "SUBMISSION", None)
        found = [single] if single is not None else None
    if found is None:
        raise PluginError(f"{where}: defines neither SUBMISSION nor SUBMISSIONS")
    found = list(found)
    for item in found:
        if not isinstance(item, Submission):
            raise PluginError(f"{where}: SUBMISSION must be ntire_bench.plugins.Submission, got {type(item).__name__}")
    return found


def _module_file(path: Path) -> Path:
    return path / "__init__.py" if path.is_dir() else path


def import_plugin_file(path: Path) -> list[Submission]:
    """Import one plugin file or package and return what it declares."""
    path = Path(path).resolve()
    target = _module_file(path)
    if not target.is_file():
        raise PluginError(f"{path}: no such plugin file")
    module_name = f"ntire_bench_submission_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(
        module_name, target, submodule_search_locations=[str(path)] if path.is_dir() else None
    )
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Plugins may import sibling helper modules from their own directory.
    parent = str(path.parent)
    added = parent not in sys.path
    if added:
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except PluginError:
        raise
    except BaseException as exc:  # a plugin may raise anything, SystemExit included
        sys.modules.pop(module_name, None)
        raise PluginError(f"{path.name}: import failed: {one_line(exc)}") from exc
    finally:
        if added:
            sys.path.remove(parent)
    return _declared(module, path.name)


def _candidate_paths(directory: Path) -> list[Path]:
    paths = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith(("_", ".")):
            continue
        if child.is_file() and child.suffix == ".py":
            paths.append(child)
        elif child.is_dir() and (child / "__init__.py").is_file():
            paths.append(child)
    return paths


def discover(locations: Iterable[str | os.PathLike], include_entry_points: bool = True) -> list[PluginEntry]:
    """Find submissions in directories, single plugin files and installed entry points.

    Never raises for a broken plugin: it is returned with ``error`` set.
    """
    entries: list[PluginEntry] = []
    for location in locations:
        location = Path(location)
        if location.is_dir() and not (location / "__init__.py").is_file():
            paths = _candidate_paths(location)
        elif location.exists():
            paths = [location]
        else:
            raise PluginError(f"{location}: no such submissions directory or plugin file")
        for path in paths:
            entries.extend(_entries_from_path(path))
    if include_entry_points:
        entries.extend(_entries_from_entry_points())
    _mark_duplicates(entries)
    return entries


def _entries_from_path(path: Path) -> list[PluginEntry]:
    source = str(path.resolve())
    digest = sha256_source(path)
    try:
        declared = import_plugin_file(path)
    except PluginError as exc:
        return [PluginEntry(name=path.stem, source=source, error=str(exc), source_sha256=digest)]
    return [PluginEntry(name=s.name, source=source, submission=s, source_sha256=digest) for s in declared]


def _entries_from_entry_points() -> list[PluginEntry]:
    entries = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry-point:{ep.value}"
        try:
            obj = ep.load()
            declared = [obj] if isinstance(obj, Submission) else _declared(obj, ep.value)
        except BaseException as exc:
            entries.append(PluginEntry(name=ep.name, source=source, error=f"{ep.value}: {one_line(exc)}"))
            continue
        module_file = getattr(sys.modules.get(ep.value.split(":")[0]), "__file__", None)
        digest = sha256_file(module_file) if module_file else None
        entries.extend(PluginEntry(name=s.name, source=source, submission=s, source_sha256=digest) for s in declared)
    return entries


def _mark_duplicates(entries: list[PluginEntry]) -> None:
    seen: dict[str, PluginEntry] = {}
    for entry in entries:
        if not entry.ok:
            continue
        first = seen.setdefault(entry.name, entry)
        if first is not entry:
            entry.error = f"duplicate submission name {entry.name!r}: also declared in {first.source}"
            entry.submission = None


def load_submission(source: str, name: str) -> Submission:
    """Re-import one declared submission from its source (used by worker processes)."""
    if source.startswith("entry-point:"):
        module_name, _, attr = source.removeprefix("entry-point:").partition(":")
        module = importlib.import_module(module_name)
        obj = getattr(module, attr) if attr else module
        declared = [obj] if isinstance(obj, Submission) else _declared(obj, source)
    else:
        declared = import_plugin_file(Path(source))
    for submission in declared:
        if submission.name == name:
            return submission
    raise PluginError(f"{source}: declares no submission named {name!r}")


def select(entries: list[PluginEntry], names: Iterable[str]) -> list[PluginEntry]:
    """Keep the named entries, with a 'did you mean' error for an unknown name."""
    by_name = {e.name: e for e in entries}
    chosen = []
    for name in names:
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(by_name))}"
            raise PluginError(f"unknown submission {name!r}{hint}")
        chosen.append(by_name[name])
    return chosen


def model_zoo_dirs(explicit: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The model zoo search path: ``--model-zoo`` options first, then ``$NTIRE_BENCH_MODEL_ZOO``."""
    dirs = [Path(d) for d in explicit]
    env = os.environ.get(MODEL_ZOO_ENV, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d]
    return dirs


def resolve_checkpoint(submission: Submission, zoo_dirs: Iterable[Path]) -> Path | None:
    """The checkpoint's path in the first zoo directory that has it, or None."""
    if not submission.checkpoint:
        return None
    candidate = Path(submission.checkpoint)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for directory in zoo_dirs:
        path = Path(directory) / candidate
        if path.is_file():
            return path.resolve()  # workers run in their own directory
    return None


def extract_state_dict(obj: Any, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Unwrap the usual checkpoint containers and strip a DataParallel ``module.`` prefix."""
    state = obj
    while isinstance(state, dict) and not _is_tensor_dict(state):
        key = next((k for k in STATE_DICT_WRAPPERS if k in state), None)
        if key is None:
            raise PluginError(
                f"{path}: not a state_dict; top-level keys are {sorted(map(str, state))[:8]}, "
                f"expected tensors or one of {list(STATE_DICT_WRAPPERS)}"
            )
        state = state[key]
    if not isinstance(state, dict):
        raise PluginError(f"{path}: holds a {type(state).__name__}, expected a state_dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _is_tensor_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def load_weights(model: nn.Module, path: str | os.PathLike, expected_sha256: str | None = None) -> None:
    """Load a checkpoint into ``model`` with ``weights_only=True`` and ``strict=True``.

    A pickle that needs arbitrary code is refused, never retried unsafely.
    """
    if expected_sha256:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise PluginError(f"{path}: sha256 is {actual}, the submission declares {expected_sha256}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PluginError(f"{path}: cannot be loaded with weights_only=True: {one_line(exc)}") from exc
    state = extract_state_dict(obj, path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise PluginError(
            f"{Path(path).name} does not match the architecture: "
            f"missing keys {_preview(missing)}; unexpected keys {_preview(unexpected)}"
        )
    mismatched = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if mismatched:
        k = mismatched[0]
        raise PluginError(
            f"{Path(path).name} does not match the architecture: {len(mismatched)} shape mismatch(es), "
            f"first {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        )
    model.load_state_dict(state, strict=True)


def _preview(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... {len(keys) - limit} more' if len(keys) > limit else ''}]"


def format_traceback_tail(exc: BaseException, limit: int = 3) -> str:
    """The last frames of a traceback, for logs (results carry only the one-line reason)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit))
