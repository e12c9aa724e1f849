"""Checking the pages, tasks and solutions of a ``competition.yaml``, and every file they name, as Codabench's
v2 unpacker reads them (src/apps/competitions/unpackers/v2.py and base_unpacker.py)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import PurePosixPath
from typing import Any

from ntire_bench.codabench.validate_common import Add, check_index, check_keys, check_text, is_uuid, mappings, says
from ntire_bench.codabench.validate_phases import check_task_list

DATA_FIELDS = ("ingestion_program", "input_data", "scoring_program", "reference_data")
TASK_FIELDS = frozenset({"index", "key", "name", "description", "ingestion_only_during_scoring", *DATA_FIELDS})
PAGE_FIELDS = frozenset({"title", "file"})
SOLUTION_FIELDS = frozenset({"index", "tasks", "key", "path", "name", "description"})
MAX_TASK_NAME = 256  # Task.name (src/apps/tasks/models.py)
MAX_PAGE_TITLE = 255  # Page.title (src/apps/competitions/models.py)

FileRef = tuple[str, Any, bool]  # (where, the path, whether the UUID of a dataset on Codabench may stand in)


def check_pages(pages: Any, add: Add, file_refs: list[FileRef]) -> None:
    """v2.py ``_unpack_pages``: it iterates over ``pages`` (so the field is required) and opens each ``file``."""
    missing = says("Unpacking the bundle failed. Here is the error log: 'NoneType' object is not iterable")
    for i, page in mappings(pages, "pages", add, True, "the v2 unpacker needs a list; give at least an overview page"
                            + missing):
        where = f"pages[{i}]"
        check_keys(page, where, PAGE_FIELDS, add, "v2.py _unpack_pages")
        check_text(page.get("title"), f"{where}.title", MAX_PAGE_TITLE, add, "This field may not be null.")
        if isinstance(page.get("file"), str) and page["file"].strip():
            file_refs.append((f"{where}.file", page["file"], False))
        else:
            add(f"{where}.file: required, the page's Markdown file in the bundle"
                + says("Unpacking the bundle failed. Here is the error log: 'file'"))


def check_tasks(tasks: Any, add: Add, file_refs: list[FileRef]) -> set:
    """v2.py ``_unpack_tasks`` and base_unpacker.py ``_save_tasks``; returns the task indexes defined."""
    indexes: set = set()
    for i, task in mappings(tasks, "tasks", add, True, "give at least one task with a scoring_program"
                            + says("No tasks listed in this competition")):
        where = f"tasks[{i}]"
        label = task.get("name") or task.get("key")
        check_keys(task, where, TASK_FIELDS, add, "v2.py _unpack_tasks")
        check_index(task, where, indexes, add, "task", missing=f"ERROR: No index for task: {label}",
                    duplicate="ERROR: Duplicate task indexes. Index: {index}")
        if "key" in task:  # a task already on Codabench; every other field is ignored
            if not is_uuid(task["key"]):
                add(f"{where}.key: expected the UUID of a task on Codabench, got {task['key']!r}"
                    + says(f"Unpacking the bundle failed. Here is the error log: ['“{task['key']}” is not a valid "
                           "UUID.']"))
            continue
        check_text(task.get("name"), f"{where}.name", MAX_TASK_NAME, add, "This field may not be null.")
        if "scoring_program" not in task:
            add(f"{where}.scoring_program: required (a folder or .zip with metadata.yaml); every task needs one"
                + says(f'ERROR: Task "{task.get("name") or task.get("index")}" does not have a scoring program'))
        for key in DATA_FIELDS:
            if key in task:
                if isinstance(task[key], str) and task[key].strip():
                    file_refs.append((f"{where}.{key}", task[key], True))
                else:
                    add(f"{where}.{key}: expected a path in the bundle, got {task[key]!r}")
        if "ingestion_only_during_scoring" in task and not isinstance(task["ingestion_only_during_scoring"], bool):
            add(f"{where}.ingestion_only_during_scoring: expected true or false")
    return indexes


def check_solutions(solutions: Any, task_indexes: set, add: Add, file_refs: list[FileRef]) -> None:
    """v2.py ``_unpack_solutions``: an index, the tasks it solves, and a path unless it names a key."""
    seen: set = set()
    for i, solution in mappings(solutions, "solutions", add, False, ""):
        where = f"solutions[{i}]"
        check_keys(solution, where, SOLUTION_FIELDS, add, "v2.py _unpack_solutions")
        label = solution.get("name") or solution.get("key")
        check_index(solution, where, seen, add, "solution", missing=f"ERROR: No index for solution: {label}")
        check_task_list(solution.get("tasks"), f"{where}.tasks", task_indexes, add)
        if "key" not in solution:
            if not isinstance(solution.get("path"), str) or not solution["path"].strip():
                add(f"{where}.path: required, the .zip or folder of the solution"
                    + says(f'Solution {solution.get("name")} missing "path"'))
            else:
                file_refs.append((f"{where}.path", solution["path"], True))


def check_file_refs(refs: list[FileRef], bundle_files: Collection[str] | None, add: Add) -> None:
    """Every named file must be in the bundle (base_unpacker.py ``_get_data_key``, ``_read_image``).

    Codabench joins the value to the folder it extracted the bundle into and, when nothing is
    there, takes a data value for the UUID of a dataset already on the site. We also refuse
    paths that would leave the bundle: Codabench would look them up on its own disk.
    """
    present: set[str] = set()
    if bundle_files is not None:
        for name in bundle_files:
            parts = PurePosixPath(str(name).strip("/")).parts
            present.update("/".join(parts[: n + 1]) for n in range(len(parts)))
    for where, ref, key_allowed in refs:
        if not isinstance(ref, str) or not ref.strip():
            add(f"{where}: expected a path in the bundle, got {ref!r}")
            continue
        if key_allowed and is_uuid(ref):
            continue
        path = PurePosixPath(ref.strip())
        if path.is_absolute() or ".." in path.parts or "\\" in ref:
            add(f"{where}: {ref!r} must be a relative path inside the bundle (no leading '/', '..' or backslash)")
            continue
        if bundle_files is not None and str(path).strip("/") not in present:
            if key_allowed:
                add(f"{where}: '{ref}' is not in the bundle; add it (or the UUID key of a dataset already on "
                    f"Codabench)" + says(f'Cannot find dataset: "{ref}"'))
            else:
                reason = (f"Unable to find image: {ref}" if where == "image" else f"Unable to find page: {ref}")
                add(f"{where}: '{ref}' is not in the bundle; add it" + says(reason))
