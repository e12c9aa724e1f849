"""Checking a bundle zip as Codabench reads it: ``competition.yaml`` at its root, the files it names, pages
with content, a logo Codabench can store, data that is a real zip, and programs that say how to run them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ntire_bench.codabench.spec import COLUMN_KEYS, BundleError
from ntire_bench.codabench.validate import competition_warnings, validate_competition_yaml
from ntire_bench.codabench.validate_common import says
from ntire_bench.util.text import one_line

# The logo goes to drf-extra-fields' Base64ImageField (src/apps/api/fields.py, NamedBase64ImageField), which
# accepts these types, told apart by the file's first bytes, and Competition.make_logo_icon then resizes it.
_LOGO_TYPES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))


@dataclass
class BundleReport:
    """What checking a bundle found: ``problems`` Codabench would refuse or break on, ``warnings`` it would accept."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def validate_bundle(zip_path: Path, score_keys: Collection[str] | None = COLUMN_KEYS) -> list[str]:
    """The problems of the bundle zip ``zip_path``, one line each (empty = ready to upload); see ``check_bundle``."""
    return check_bundle(zip_path, score_keys).problems


def check_bundle(zip_path: Path, score_keys: Collection[str] | None = COLUMN_KEYS) -> BundleReport:
    """Check a bundle zip: its ``competition.yaml``, the files it names, pages, logo, data zips, program commands.

    Raises ``BundleError`` when the file is not a zip or has no readable ``competition.yaml`` at
    its root (src/apps/competitions/tasks.py, ``unpack_competition``, stops there too).
    """
    zip_path = Path(zip_path)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{zip_path}: not a readable zip ({one_line(exc, with_type=False)}); pass the bundle .zip"
                          + says("Bad zip file uploaded.")) from None
    with archive:
        names = [info.filename for info in archive.infolist()]
        sizes = {info.filename.rstrip("/"): info.file_size for info in archive.infolist() if not info.is_dir()}
        if "competition.yaml" not in sizes:
            nested = next((n for n in names if n.endswith("/competition.yaml")), None)
            hint = f"; it is at '{nested}': zip the folder's contents, not the folder" if nested else ""
            raise BundleError(f"{zip_path}: no competition.yaml at the root of the zip{hint}"
                              + says("competition.yaml is missing from zip, check your folder structure to make sure "
                                     "it is in the root directory."))
        try:
            data = yaml.safe_load(archive.read("competition.yaml"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise BundleError(f"{zip_path}: competition.yaml is not valid YAML{at}; fix the syntax") from None
        report = BundleReport(validate_competition_yaml(data, score_keys, names), competition_warnings(data))
        if isinstance(data, Mapping):
            _check_members(archive, sizes, data, report.problems.append)
    return report


def _check_members(archive: zipfile.ZipFile, sizes: Mapping[str, int], data: Mapping[str, Any], add) -> None:
    """What only the members' contents show: empty or unreadable pages, the logo, data zips, program commands."""
    terms = data.get("terms")
    texts = [("terms", terms, f"{terms} is empty, it must contain content.")]
    texts += [(f"pages[{i}].file", page.get("file"), f"Page '{page.get('file')}' is empty, it must contain content.")
              for i, page in enumerate(data.get("pages") or []) if isinstance(page, Mapping)]
    for where, ref, reason in texts:  # v2.py, _unpack_pages and _unpack_terms read each as text
        name = ref.strip("/") if isinstance(ref, str) else None
        if name not in sizes:
            continue
        if sizes[name] == 0:
            add(f"{where}: '{ref}' is empty; Codabench refuses empty pages" + says(reason))
            continue
        try:
            archive.read(name).decode("utf-8")
        except UnicodeDecodeError:
            add(f"{where}: '{ref}' is not UTF-8 text; save it as UTF-8 Markdown")
    logo = data.get("image")
    if isinstance(logo, str) and logo.strip("/") in sizes:
        problem = _logo_problem(archive.read(logo.strip("/")))
        if problem:
            add(f"image: '{logo}' {problem}")
    for i, task in enumerate(data.get("tasks") or []):
        if not isinstance(task, Mapping) or "key" in task:
            continue
        for key in ("scoring_program", "ingestion_program"):
            problem = _program_problem(archive, sizes, task.get(key), key)
            if problem:
                add(f"tasks[{i}].{key}: {problem}")
        for key in ("input_data", "reference_data"):
            ref = task.get(key)
            if isinstance(ref, str) and ref.strip("/") in sizes and not _is_zip(archive, ref.strip("/")):
                # compute_worker/compute_worker.py, _get_bundle: retried for minutes, then the submission fails.
                add(f"tasks[{i}].{key}: '{ref}' is not a zip; zip the data (or give a folder)"
                    + says("Bad or empty zip file"))


def _logo_problem(content: bytes) -> str | None:
    kind = next((name for magic, name in _LOGO_TYPES if content.startswith(magic)), None)
    if kind is None and content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        kind = "webp"
    if kind is None:
        return ("is not a PNG, JPEG, GIF or WebP image" + says("The type of the image couldn't be determined."))
    if kind != "gif":  # OpenCV decodes the other three; Codabench opens the logo to resize it
        import cv2
        import numpy as np

        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # the problem line says it; no C++ log
        try:
            decoded = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if decoded is None:
            return f"is a damaged {kind.upper()} image" + says("Please upload a valid image.")
    return None


def _open_zip(archive: zipfile.ZipFile, name: str) -> zipfile.ZipFile | None:
    """The member ``name`` opened as a zip (streamed from the bundle, never read whole), or None."""
    try:
        return zipfile.ZipFile(archive.open(name))
    except (zipfile.BadZipFile, OSError, EOFError):
        return None


def _is_zip(archive: zipfile.ZipFile, name: str) -> bool:
    inner = _open_zip(archive, name)
    if inner is None:
        return False
    inner.close()
    return True


def _program_problem(archive: zipfile.ZipFile, sizes: Mapping[str, int], ref: Any, role: str) -> str | None:
    """A program must hold ``metadata.yaml`` (or ``metadata``) at its root with a ``command``.

    compute_worker/compute_worker.py, ``_run_program_directory``: an ingestion program without
    either fails the submission; a scoring program without metadata is copied to the output and
    one without a command runs nothing, so no scores are ever written.
    """
    if not isinstance(ref, str):
        return None
    folder = ref.strip("/")
    if folder in sizes:  # a program given as a .zip: its metadata must be at the zip's root
        inner = _open_zip(archive, folder)
        if inner is None:
            return f"'{ref}' is not a zip; give the program folder or a zip of its contents" + says("Bad or empty zip file")
        with inner:
            members = set(inner.namelist())
            meta = next((name for name in ("metadata.yaml", "metadata") if name in members), None)
            text = inner.read(meta) if meta else None
        where = f"'{ref}' ({meta})" if meta else None
    else:
        meta = next((f"{folder}/{name}" for name in ("metadata.yaml", "metadata") if f"{folder}/{name}" in sizes), None)
        if meta is None and not any(name.startswith(folder + "/") for name in sizes):
            return None  # absent: check_file_refs says so
        text = archive.read(meta) if meta else None
        where = f"'{meta}'" if meta else None
    missing = ("Program directory missing 'metadata.yaml/metadata'" if role == "ingestion_program" else "")
    if text is None:
        return (f"'{ref}' has no metadata.yaml at its root; add one with a 'command:'" + (says(missing) if missing else ""))
    try:
        metadata = yaml.safe_load(io.BytesIO(text))
    except yaml.YAMLError:
        return f"{where} is not valid YAML"
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("command"), str) or not metadata["command"].strip():
        reason = says("Program directory missing 'command' in metadata") if role == "ingestion_program" else ""
        return f"{where} has no 'command:'; Codabench would not know how to run the program" + reason
    return None
