"""Finding submissions without running their code in this process.

Literal ``Submission(...)`` declarations are read from the source (plugins.read_static), NTIRE
team declarations are read as YAML, and anything else (a computed declaration, an entry
point) is imported by a sandboxed worker that reports plain data back, which is validated
here. A plugin that hangs, crashes or exits while being imported becomes a ``broken`` entry;
it cannot touch the parent or the other plugins.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Iterable, Sequence

from ntire_bench.worker.client import IsolatedWorker, WorkerLimits, python_path_entries
from ntire_bench.plugins.declaration import ENTRY_POINT_GROUP, YAML_SUFFIXES, PluginEntry, PluginError, SubmissionInfo
from ntire_bench.plugins.static import read_static
from ntire_bench.util.hashing import sha256_file, sha256_tree
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.util.text import did_you_mean

DISCOVERY_TIMEOUT_S = 120.0


def _candidates(directory: Path) -> list[Path]:
    paths = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith(("_", ".")):
            continue
        if child.is_file() and child.suffix in (".py", *YAML_SUFFIXES):
            paths.append(child)
        elif child.is_dir() and (child / "__init__.py").is_file():
            paths.append(child)
    return paths


def _from_yaml(path: Path) -> list[PluginEntry]:
    from ntire_bench.ntire.declaration import DeclarationError, read_declaration
    from ntire_bench.ntire.team import team_info

    source, digest = str(path.resolve()), sha256_file(path)
    try:
        declaration = read_declaration(path)
    except DeclarationError as exc:
        return [PluginEntry(name=path.stem, source=source, error=str(exc), source_sha256=digest)]
    if declaration.error:
        return [PluginEntry(name=declaration.name, source=source, error=f"{path.name}: {declaration.error}",
                            source_sha256=digest)]
    if declaration.data_range is None:
        return [PluginEntry(name=declaration.name, source=source, source_sha256=digest,
                            error=f"{path.name}: data_range is not set; write 1.0 or 255.0 in the declaration")]
    try:
        info = SubmissionInfo.from_dict(team_info(declaration), str(path))
    except PluginError as exc:
        return [PluginEntry(name=declaration.name, source=source, error=str(exc), source_sha256=digest)]
    return [PluginEntry(name=info.name, source=source, info=info, source_sha256=digest, read_by="static")]


def _read_in_workers(sources: Sequence[str], hidden: Sequence[Path], sandbox: str,
                     timeout_s: float) -> dict[str, list[SubmissionInfo] | str]:
    """Import each source in its own sandboxed worker, a few at a time; each gets infos or a reason."""
    out: dict[str, list[SubmissionInfo] | str] = {}
    width = max(1, min(len(sources), os.cpu_count() or 1))
    for start in range(0, len(sources), width):
        batch = sources[start: start + width]
        workers = {}
        for source in batch:  # start them all first: Python and torch start-up overlap
            readable = (python_path_entries(list(hidden)) if source.startswith("entry-point:")
                        else [Path(source).resolve().parent])
            limits = WorkerLimits(timeout_s=timeout_s, readable=readable, hidden=list(hidden), sandbox=sandbox,
                                  threads=1)
            workers[source] = IsolatedWorker(limits)
        for source, worker in workers.items():
            try:
                reply, _ = worker.request("discover", source=source)
                out[source] = [SubmissionInfo.from_dict(item, source) for item in reply["result"]]
                if not out[source]:
                    out[source] = f"{Path(source).name}: declares no submission"
            except (WorkerFailure, PluginError) as exc:
                out[source] = str(exc)
            finally:
                worker.close()
    return out


def discover(locations: Iterable[str | os.PathLike], include_entry_points: bool = True,
             hidden: Sequence[Path] = (), sandbox: str = "auto", timeout_s: float = DISCOVERY_TIMEOUT_S
             ) -> list[PluginEntry]:
    """Every submission in directories, plugin files, declaration files and installed entry points.

    Never raises for a broken plugin: it is returned with ``error`` set. Raises PluginError
    when a location does not exist, or when two submissions share a name (naming both files).
    """
    entries: list[PluginEntry] = []
    dynamic: list[Path] = []
    for location in map(Path, locations):
        if location.is_dir() and not (location / "__init__.py").is_file():
            paths = _candidates(location)
        elif location.exists():
            paths = [location]
        else:
            raise PluginError(f"{location}: no such submissions directory or plugin file")
        for path in paths:
            if path.suffix in YAML_SUFFIXES:
                entries.extend(_from_yaml(path))
                continue
            infos = read_static(path)
            if infos is None:
                dynamic.append(path)
                continue
            digest = sha256_tree(path)
            for info in infos:
                info = SubmissionInfo.from_dict({**info.to_dict(), "code_root": str(path.resolve().parent)}, str(path))
                entries.append(PluginEntry(info.name, str(path.resolve()), info, None, digest, "static"))
    sources = [str(p.resolve()) for p in dynamic]
    points = list(entry_points(group=ENTRY_POINT_GROUP)) if include_entry_points else []
    sources += [f"entry-point:{ep.value}" for ep in points]
    found = _read_in_workers(sources, hidden, sandbox, timeout_s) if sources else {}
    for source, result in found.items():
        is_file = not source.startswith("entry-point:")
        digest = sha256_tree(Path(source)) if is_file else None
        stem = Path(source).stem if is_file else source.removeprefix("entry-point:")
        if isinstance(result, str):
            entries.append(PluginEntry(stem, source, None, result, digest, "worker"))
            continue
        for info in result:
            if is_file:
                info = SubmissionInfo.from_dict({**info.to_dict(), "code_root": str(Path(source).parent)}, source)
            entries.append(PluginEntry(info.name, source, info, None, digest, "worker"))
    refuse_duplicates(entries)
    return sorted(entries, key=lambda e: (e.source, e.name))


def refuse_duplicates(entries: Sequence[PluginEntry]) -> None:
    """Two declarations of one name would overwrite each other's results: refuse, naming both files."""
    seen: dict[str, PluginEntry] = {}
    for entry in entries:
        first = seen.setdefault(entry.name, entry)
        if first is not entry:
            raise PluginError(f"two submissions are named {entry.name!r}: {first.source} and {entry.source}; "
                              "rename one (the name keys its results file)")


def select(entries: list[PluginEntry], names: Iterable[str]) -> list[PluginEntry]:
    """Keep the named entries, with a 'did you mean' error for an unknown name."""
    by_name = {e.name: e for e in entries}
    chosen = []
    for name in names:
        if name not in by_name:
            raise PluginError(f"unknown submission {name!r}; {did_you_mean(name, by_name, known=True)}")
        chosen.append(by_name[name])
    return chosen
