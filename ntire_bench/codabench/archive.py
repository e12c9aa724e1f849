"""Checking a bundle zip as Codabench reads it: ``competition.yaml`` at its root, the files it names,
non-empty pages, and program folders that say how to run them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from ntire_bench.codabench.spec import COLUMN_KEYS, BundleError
from ntire_bench.codabench.validate import validate_competition_yaml
from ntire_bench.util.text import one_line


def validate_bundle(zip_path: Path, score_keys: Collection[str] | None = COLUMN_KEYS) -> list[str]:
    """Check a bundle zip: its ``competition.yaml``, the files it names, empty pages, program commands.

    Returns the problems, one line each (empty = ready to upload). Raises ``BundleError``
    when the file is not a zip or has no readable ``competition.yaml`` at its root.
    """
    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{zip_path}: not a readable zip ({one_line(exc, with_type=False)}); pass the bundle .zip") from None
    with archive:
        names = [info.filename for info in archive.infolist()]
        sizes = {info.filename.rstrip("/"): info.file_size for info in archive.infolist() if not info.is_dir()}
        if "competition.yaml" not in sizes:
            nested = next((n for n in names if n.endswith("/competition.yaml")), None)
            hint = f"; it is at '{nested}': zip the folder's contents, not the folder" if nested else ""
            raise BundleError(f"{zip_path}: no competition.yaml at the root of the zip{hint}")
        try:
            data = yaml.safe_load(archive.read("competition.yaml"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise BundleError(f"{zip_path}: competition.yaml is not valid YAML{at}; fix the syntax") from None
        problems = validate_competition_yaml(data, score_keys, names)
        if not isinstance(data, Mapping):
            return problems
        texts = [("terms", data.get("terms"))]
        texts += [(f"pages[{i}].file", page.get("file")) for i, page in enumerate(data.get("pages") or [])
                  if isinstance(page, Mapping)]
        for where, ref in texts:
            if isinstance(ref, str) and sizes.get(ref.strip("/")) == 0:
                problems.append(f"{where}: '{ref}' is empty; Codabench refuses empty pages")
        for i, task in enumerate(data.get("tasks") or []):
            if isinstance(task, Mapping):
                for key in ("scoring_program", "ingestion_program"):
                    problem = _program_problem(archive, sizes, task.get(key))
                    if problem:
                        problems.append(f"tasks[{i}].{key}: {problem}")
    return problems


def _program_problem(archive: zipfile.ZipFile, sizes: Mapping[str, int], ref: Any) -> str | None:
    """A program folder in the bundle must hold a metadata.yaml with a command."""
    if not isinstance(ref, str) or ref.strip("/") in sizes:  # absent, or a .zip: not inspected here
        return None
    folder = ref.strip("/")
    meta = next((f"{folder}/{name}" for name in ("metadata.yaml", "metadata") if f"{folder}/{name}" in sizes), None)
    if meta is None:
        if any(name.startswith(folder + "/") for name in sizes):
            return f"'{folder}/' has no metadata.yaml; add one with a 'command:'"
        return None
    try:
        metadata = yaml.safe_load(io.BytesIO(archive.read(meta)))
    except yaml.YAMLError:
        return f"'{meta}' is not valid YAML"
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("command"), str) or not metadata["command"].strip():
        return f"'{meta}' has no 'command:'; Codabench would not know how to run the program"
    return None
