"""Sandbox policies: what a worker may read and write, what it must never reach, and the concrete
path plan (symlinks resolved, hidden paths carved out of readable ones) every mechanism enforces.

Standard library only: a worker imports this before numpy or torch (see sandbox.py).
"""

from __future__ import annotations

import json
import os
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ntire_bench.util.paths import PACKAGE_DIR

MECHANISMS = ("bubblewrap", "landlock", "none")
ENV_VAR = "NTIRE_BENCH_SANDBOX"
# Linux limits one environment string to 32 pages (MAX_ARG_STRLEN).
MAX_ENV_BYTES = 128 * 1024
# Root-only secrets inside the readable /etc: a worker started by root keeps uid 0 (without
# capabilities), so file permissions alone would not stop it from reading these.
ALWAYS_HIDDEN = (Path("/etc/shadow"), Path("/etc/shadow-"), Path("/etc/gshadow"), Path("/etc/gshadow-"),
                 Path("/etc/sudoers"), Path("/etc/sudoers.d"), Path("/etc/ssh"), Path("/etc/ssl/private"))


class SandboxError(RuntimeError):
    """A sandbox could not be set up or entered; ``str(exc)`` is a one-line reason."""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class SandboxPolicy:
    """What a sandboxed worker may read, where it may write, and what it must never reach.

    ``readable`` paths are readable and executable, ``writable`` ones readable and writable
    (the worker's private dir). ``hidden`` wins over both, even when nested inside them.
    ``gpu`` grants the NVIDIA device nodes. Paths must be absolute.
    """

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    gpu: bool = False

    def __post_init__(self) -> None:
        for name in ("readable", "writable", "hidden"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                raise SandboxError(f"SandboxPolicy.{name} must be a sequence of paths, not one path")
            paths = tuple(Path(p) for p in value)
            for path in paths:
                if not path.is_absolute():
                    raise SandboxError(f"SandboxPolicy.{name}: {path} is not an absolute path")
            object.__setattr__(self, name, paths)
        if not isinstance(self.gpu, bool):
            raise SandboxError(f"SandboxPolicy.gpu must be true or false, got {self.gpu!r}")

    def to_json(self) -> str:
        """The policy as a JSON object of path strings."""
        return json.dumps({
            "readable": [str(p) for p in self.readable],
            "writable": [str(p) for p in self.writable],
            "hidden": [str(p) for p in self.hidden],
            "gpu": self.gpu,
        })

    @classmethod
    def from_json(cls, text: str) -> "SandboxPolicy":
        """Parse ``to_json`` output; a malformed policy raises SandboxError naming the field."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SandboxError(f"sandbox policy is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SandboxError("sandbox policy must be a JSON object")
        unknown = set(data) - {"readable", "writable", "hidden", "gpu"}
        if unknown:
            raise SandboxError(f"sandbox policy has unknown field(s): {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = {}
        for name in ("readable", "writable", "hidden"):
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise SandboxError(f"sandbox policy field '{name}' must be a list of path strings")
            fields[name] = tuple(Path(p) for p in value)
        return cls(gpu=data.get("gpu", False), **fields)


@dataclass(frozen=True)
class SandboxReport:
    """Which mechanism confines a worker, what it enforces, and in one line why it is weaker."""

    mechanism: str
    enforced: tuple[str, ...] = field(default_factory=tuple)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, as recorded in results files."""
        return {"mechanism": self.mechanism, "enforced": list(self.enforced), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SandboxReport":
        """Inverse of ``to_dict``."""
        return cls(str(data["mechanism"]), tuple(data.get("enforced", ())), str(data.get("detail", "")))


NONE_REPORT = SandboxReport(
    "none", (), "NOT SANDBOXED: submission code runs with the harness's own file, network and process access"
)
BWRAP_ENFORCED = (
    "filesystem", "proc", "pid-namespace", "network", "ipc", "signals", "ptrace", "capabilities", "user-namespaces",
)


def check_mechanism(name: str, allow_auto: bool) -> None:
    choices = ("auto",) + MECHANISMS if allow_auto else MECHANISMS
    if name not in choices:
        raise SandboxError(f"unknown sandbox mechanism {name!r}: choose one of {', '.join(choices)}")


# --------------------------------------------------------------------------- paths


def base_readable_paths() -> list[Path]:
    """What any Python + torch worker needs to read: system dirs, the interpreter, site-packages
    and the ``ntire_bench`` package directory (not the repository root beside it)."""
    candidates: list[str] = ["/usr", "/etc", "/sys", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
    candidates += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, sys.executable]
    candidates += site.getsitepackages()
    user_site = site.getusersitepackages()
    if site.ENABLE_USER_SITE and user_site:
        candidates.append(user_site)
    candidates.append(str(PACKAGE_DIR))
    seen: set[str] = set()
    paths = []
    for candidate in candidates:
        absolute = os.path.abspath(candidate)
        if absolute not in seen and os.path.lexists(absolute):
            seen.add(absolute)
            paths.append(Path(absolute))
    return paths


def is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def carve(
    allowed: Iterable[Path], hidden: Iterable[Path], children: Callable[[Path], Iterable[str] | None]
) -> list[Path]:
    """The paths to grant so that everything under ``allowed`` is reachable except ``hidden``.

    An allowed path with no hidden path inside it is kept whole; one with a hidden path strictly
    inside is replaced by its children (``children(path)``: entry names, or None when the path
    is not a directory), each carved again; an allowed path equal to or inside a hidden one is
    dropped. Pure: the filesystem is only seen through ``children``. Result sorted, parents first.
    """
    hidden = [Path(h) for h in hidden]
    granted: set[Path] = set()
    pending = [Path(p) for p in allowed]
    while pending:
        path = pending.pop()
        if any(is_within(path, h) for h in hidden):
            continue
        inner = [h for h in hidden if path in h.parents]
        names = children(path) if inner else None
        if names is None:
            granted.add(path)
        else:
            pending.extend(path / name for name in names)
    return sorted(granted, key=lambda p: (len(p.parts), str(p)))


def _list_children(path: Path) -> list[str] | None:
    """Directory entries of a real path (None for a non-directory or a symlink)."""
    if path.is_symlink() or not path.is_dir():
        return None
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        raise SandboxError(f"cannot list {path} to carve hidden paths out of it: {exc.strerror}") from None


def _prune_nested(paths: Iterable[Path]) -> list[Path]:
    """Drop paths that lie inside another path of the list."""
    unique = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in unique:
        if not any(is_within(path, k) for k in kept):
            kept.append(path)
    return kept


@dataclass(frozen=True)
class PathPlan:
    """A policy resolved against the filesystem: what to grant, path by path."""

    read_only: tuple[Path, ...]
    read_write: tuple[Path, ...]
    symlinks: tuple[tuple[Path, str], ...]  # (where, target text) to recreate under bubblewrap


def _symlink_chain(path: str) -> list[tuple[Path, str]]:
    """The symlinks met while resolving ``path`` component by component, as (link, target)."""
    links = []
    current = "/"
    for part in Path(path).parts[1:]:
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            links.append((Path(candidate), os.readlink(candidate)))
            current = os.path.realpath(candidate)
        else:
            current = candidate
    return links


def plan_paths(policy: SandboxPolicy) -> PathPlan:
    """Resolve symlinks, let hidden win, carve, and collect the symlinks bubblewrap must recreate."""
    requested = (*policy.hidden, *ALWAYS_HIDDEN)
    hidden = {Path(os.path.realpath(h)) for h in requested} | {Path(os.path.abspath(h)) for h in requested}
    for name in ("readable", "writable"):
        for path in getattr(policy, name):
            real = Path(os.path.realpath(path))
            if real == Path("/"):
                raise SandboxError(f"SandboxPolicy.{name}: / would expose everything; list the directories needed")
            if is_within(real, Path("/proc")):
                raise SandboxError(f"SandboxPolicy.{name}: {path} is under /proc, which the sandbox provides itself")
    for path in policy.writable:
        if not os.path.isdir(path):
            raise SandboxError(f"writable path {path} does not exist or is not a directory; create it first")
        real = Path(os.path.realpath(path))
        for h in hidden:
            if is_within(real, h):
                raise SandboxError(f"writable path {path} lies inside hidden path {h}; choose a work dir elsewhere")

    def resolved(paths: Iterable[Path]) -> list[Path]:
        return _prune_nested(Path(os.path.realpath(p)) for p in paths if os.path.exists(p))

    read_write = carve(resolved(policy.writable), hidden, _list_children)
    read_only = [p for p in carve(resolved(policy.readable), hidden, _list_children)
                 if not any(is_within(p, w) for w in read_write)]
    granted = read_only + read_write

    symlinks: dict[Path, str] = {}
    for path in (*read_only, *read_write):  # symlinks carving found inside carved directories
        if path.is_symlink():
            symlinks[path] = os.readlink(path)
    for raw in (*policy.readable, *policy.writable):  # /lib -> usr/lib and the like
        if not os.path.exists(raw):
            continue
        for link, target in _symlink_chain(os.path.abspath(raw)):
            inside_grant = any(g in link.parents for g in granted)
            if not inside_grant and not any(is_within(link, h) for h in hidden):
                symlinks.setdefault(link, target)
    return PathPlan(tuple(p for p in read_only if p not in symlinks), tuple(p for p in read_write if p not in symlinks),
                 tuple(sorted(symlinks.items())))
