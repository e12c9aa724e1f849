"""Checking a Codabench bundle (or a parsed ``competition.yaml``) against Codabench's v2 format.

The rules are Codabench's (see codabench_bundle.py's docstring for the facts relied on);
every problem is one line that names the field or file and says what to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from itertools import pairwise
from pathlib import PurePosixPath
from typing import Any


from ntire_bench.codabench.spec import COMPUTATIONS, MAX_COLUMN_KEY, MAX_COLUMN_TITLE, MAX_LEADERBOARD_KEY, MAX_LEADERBOARD_TITLE, SORTINGS, SUBMISSION_RULES
from ntire_bench.util.text import did_you_mean

# --------------------------------------------------------------------------- validation

_TOP_LEVEL = {
    "version", "title", "description", "image", "terms", "pages", "phases", "tasks", "solutions",
    "leaderboards", "fact_sheet", "docker_image", "registration_auto_approve", "make_programs_available",
    "make_input_data_available", "queue", "enable_detailed_results", "show_detailed_results_in_submission_panel",
    "show_detailed_results_in_leaderboard", "contact_email", "reward", "auto_run_submissions",
    "can_participants_make_submissions_public", "forum_enabled", "competition_type",
}
_TOP_LEVEL_BOOLS = (
    "registration_auto_approve", "make_programs_available", "make_input_data_available", "enable_detailed_results",
    "show_detailed_results_in_submission_panel", "show_detailed_results_in_leaderboard", "auto_run_submissions",
    "can_participants_make_submissions_public", "forum_enabled",
)
_TOP_LEVEL_STRINGS = ("description", "docker_image", "queue", "contact_email", "reward", "competition_type")
_TASK_FILES = ("scoring_program", "ingestion_program", "input_data", "reference_data")
_PHASE_BOOLS = ("auto_migrate_to_this_phase", "hide_output", "hide_prediction_output", "hide_score_output",
                "accepts_only_result_submissions")
_PHASE_COUNTS = ("max_submissions", "max_submissions_per_day", "execution_time_limit")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _parse_time(value: Any) -> tuple[datetime | None, str | None]:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None, f"{value!r} is not a date-time; write YYYY-MM-DD HH:MM:SS (UTC)"
    else:
        return None, f"expected a date-time (YYYY-MM-DD HH:MM:SS, UTC), got {_kind(value)}"
    offset = moment.utcoffset()
    if offset:
        return None, (f"{value} has a UTC offset, which Codabench discards (it reads every time as UTC); "
                      f"write the time in UTC: {(moment - offset).replace(tzinfo=None)}")
    return moment.replace(tzinfo=None), None


def validate_competition_yaml(
    data: Mapping[str, Any],
    score_keys: Collection[str] | None = None,
    bundle_files: Collection[str] | None = None,
) -> list[str]:
    """Check a parsed ``competition.yaml`` against Codabench's v2 format; return the problems.

    An empty list means valid. ``score_keys``, when given, are the ``scores.json`` keys the
    scoring program writes: each must be a column that Codabench does not compute, and each
    such column must be written. ``bundle_files``, when given, are the bundle's member
    paths: every file the YAML names must be among them (a dataset key, a UUID, is also
    accepted where Codabench accepts one). Each problem is one line naming the field.
    """
    if not isinstance(data, Mapping):
        return [f"competition.yaml: the top level must be a mapping of fields (title, phases, ...), got {_kind(data)}"]
    problems: list[str] = []
    add = problems.append

    for key in data:
        if key not in _TOP_LEVEL:
            hint = did_you_mean(str(key), _TOP_LEVEL)
            hint = f"; {hint}" if hint else ""
            add(f"{key}: not a Codabench competition field, it would be ignored{hint}")
    if data.get("version") not in (2, "2"):
        add(f"version: must be 2 (a Codabench v2 bundle), got {data.get('version')!r}")
    for key in ("title", "image", "terms"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            add(f"{key}: required, a non-empty string; got {_kind(data.get(key))}")
    for key in _TOP_LEVEL_STRINGS:
        if key in data and not isinstance(data[key], str):
            add(f"{key}: expected a string, got {_kind(data[key])}")
    for key in _TOP_LEVEL_BOOLS:
        if key in data and not isinstance(data[key], bool):
            add(f"{key}: expected true or false, got {data[key]!r}")
    if isinstance(data.get("docker_image"), str) and (not data["docker_image"].strip() or " " in data["docker_image"].strip()):
        add(f"docker_image: {data['docker_image']!r} is not an image name like owner/image:tag")

    file_refs: list[tuple[str, Any, bool]] = []  # (where, path, a dataset key may stand in)
    for key in ("image", "terms"):
        if isinstance(data.get(key), str):
            file_refs.append((key, data[key], False))
    _check_pages(data.get("pages"), add, file_refs)
    task_indexes = _check_tasks(data.get("tasks"), add, file_refs)
    _check_solutions(data.get("solutions"), task_indexes, add, file_refs)
    _check_phases(data.get("phases"), task_indexes, add, file_refs)
    columns = _check_leaderboards(data.get("leaderboards"), add)
    if score_keys is not None:
        _check_score_keys(columns, score_keys, add)
    _check_file_refs(file_refs, bundle_files, add)
    return problems


def _list_of_mappings(value: Any, where: str, add, required: bool, what: str) -> list[tuple[int, Mapping[str, Any]]]:
    if value is None:
        if required:
            add(f"{where}: missing; {what}")
        return []
    if not isinstance(value, list):
        add(f"{where}: expected a list, got {_kind(value)}")
        return []
    items = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            items.append((i, item))
        else:
            add(f"{where}[{i}]: expected a mapping of fields, got {_kind(item)}")
    return items


def _check_pages(pages: Any, add, file_refs: list) -> None:
    # The documentation calls pages optional, but the v2 unpacker iterates over the field.
    for i, page in _list_of_mappings(pages, "pages", add, True, "the v2 unpacker needs a list; give at least an overview page"):
        where = f"pages[{i}]"
        for key in ("title", "file"):
            if not isinstance(page.get(key), str) or not page[key].strip():
                add(f"{where}.{key}: required, a non-empty string; got {_kind(page.get(key))}")
        if isinstance(page.get("file"), str):
            file_refs.append((f"{where}.file", page["file"], False))


def _check_index(item: Mapping[str, Any], where: str, seen: set, add, label: str) -> Any:
    index = item.get("index")
    if not _is_int(index) or index < 0:
        add(f"{where}.index: required, a non-negative integer; got {index!r}")
        return None
    if index in seen:
        add(f"{where}.index: {index} is used by another {label}; {label} indexes must be unique")
    seen.add(index)
    return index


def _check_tasks(tasks: Any, add, file_refs: list) -> set:
    indexes: set = set()
    for i, task in _list_of_mappings(tasks, "tasks", add, True, "give at least one task with a scoring_program"):
        where = f"tasks[{i}]"
        _check_index(task, where, indexes, add, "task")
        if "key" in task:  # a task already on Codabench; the other fields are ignored
            if not isinstance(task["key"], str) or not _is_uuid(task["key"]):
                add(f"{where}.key: expected the UUID of a task on Codabench, got {task['key']!r}")
            continue
        if not isinstance(task.get("name"), str) or not task["name"].strip():
            add(f"{where}.name: required, a non-empty string; got {_kind(task.get('name'))}")
        if "scoring_program" not in task:
            add(f"{where}.scoring_program: required (a folder or .zip with metadata.yaml); every task needs one")
        for key in _TASK_FILES:
            if key in task:
                if isinstance(task[key], str) and task[key].strip():
                    file_refs.append((f"{where}.{key}", task[key], True))
                else:
                    add(f"{where}.{key}: expected a path in the bundle, got {task[key]!r}")
        if "ingestion_only_during_scoring" in task and not isinstance(task["ingestion_only_during_scoring"], bool):
            add(f"{where}.ingestion_only_during_scoring: expected true or false")
    return indexes


def _check_task_list(value: Any, where: str, task_indexes: set, add) -> None:
    if not isinstance(value, list) or not value:
        add(f"{where}: required, a non-empty list of task indexes; got {value!r}")
        return
    defined = ", ".join(str(t) for t in sorted(task_indexes)) or "none"
    for ref in value:
        if not _is_int(ref) or ref not in task_indexes:
            add(f"{where}: task {ref!r} is not defined in tasks (defined: {defined})")


def _check_solutions(solutions: Any, task_indexes: set, add, file_refs: list) -> None:
    seen: set = set()
    for i, solution in _list_of_mappings(solutions, "solutions", add, False, ""):
        where = f"solutions[{i}]"
        _check_index(solution, where, seen, add, "solution")
        _check_task_list(solution.get("tasks"), f"{where}.tasks", task_indexes, add)
        if "key" not in solution:
            if not isinstance(solution.get("path"), str) or not solution["path"].strip():
                add(f"{where}.path: required, the .zip or folder of the solution; got {_kind(solution.get('path'))}")
            else:
                file_refs.append((f"{where}.path", solution["path"], False))


def _check_phases(phases: Any, task_indexes: set, add, file_refs: list) -> None:
    items = _list_of_mappings(phases, "phases", add, True, "give at least one phase")
    if isinstance(phases, list) and not phases:
        add("phases: empty; give at least one phase")
    seen: set = set()
    timeline = []
    for i, phase in items:
        where = f"phases[{i}]"
        if "index" in phase:
            _check_index(phase, where, seen, add, "phase")
        if not isinstance(phase.get("name"), str) or not phase["name"].strip():
            add(f"{where}.name: required, a non-empty string; got {_kind(phase.get('name'))}")
        _check_task_list(phase.get("tasks"), f"{where}.tasks", task_indexes, add)
        start = end = None
        if "start" not in phase:
            add(f"{where}.start: required (YYYY-MM-DD HH:MM:SS, UTC)")
        else:
            start, error = _parse_time(phase["start"])
            if error:
                add(f"{where}.start: {error}")
        if phase.get("end") is not None:
            end, error = _parse_time(phase["end"])
            if error:
                add(f"{where}.end: {error}")
        if start and end and end <= start:
            add(f"{where}.end: {end} is not after its start {start}")
        for key in _PHASE_COUNTS:
            if key in phase and (not _is_int(phase[key]) or phase[key] <= 0):
                add(f"{where}.{key}: expected a positive integer, got {phase[key]!r}")
        for key in _PHASE_BOOLS:
            if key in phase and not isinstance(phase[key], bool):
                add(f"{where}.{key}: expected true or false, got {phase[key]!r}")
        for key in ("starting_kit", "public_data"):
            if key in phase:
                file_refs.append((f"{where}.{key}", phase[key], True))
        order = phase.get("index", 0) if _is_int(phase.get("index", 0)) else 0
        timeline.append((order, i, phase, start, end))
    # The unpacker orders phases by index (declaration order when absent) and then
    # requires each to end before the next one starts.
    timeline.sort(key=lambda item: item[0])
    if timeline and timeline[0][2].get("auto_migrate_to_this_phase"):
        add(f"phases[{timeline[0][1]}].auto_migrate_to_this_phase: not allowed on the first phase")
    for (_, i, phase, _, end), (_, j, nxt, nxt_start, _) in pairwise(timeline):
        if phase.get("end") is None:
            add(f"phases[{i}].end: missing; every phase except the last needs an end")
        elif end and nxt_start and nxt_start < end:
            add(f"phases[{j}].start: {nxt_start} is before phase '{phase.get('name')}' ends ({end}); phases must not overlap")


def _check_leaderboards(leaderboards: Any, add) -> list[Mapping[str, Any]]:
    items = _list_of_mappings(leaderboards, "leaderboards", add, True,
                              "Codabench refuses a bundle without one (note the plural: 'leaderboards')")
    if isinstance(leaderboards, list) and not leaderboards:
        add("leaderboards: empty; give one leaderboard with its columns")
    if len(items) > 1:
        add(f"leaderboards: {len(items)} given, but Codabench attaches only the first to the phases; merge the columns into one")
    all_columns: list[Mapping[str, Any]] = []
    keys_seen: dict[str, str] = {}
    for i, board in items:
        where = f"leaderboards[{i}]"
        _check_text(board.get("title"), f"{where}.title", MAX_LEADERBOARD_TITLE, add)
        _check_text(board.get("key"), f"{where}.key", MAX_LEADERBOARD_KEY, add)
        rule = board.get("submission_rule")
        if rule is not None and rule not in SUBMISSION_RULES:
            add(f"{where}.submission_rule: {rule!r} is not one of {', '.join(SUBMISSION_RULES)}")
        if "hidden" in board and not isinstance(board["hidden"], bool):
            add(f"{where}.hidden: expected true or false, got {board['hidden']!r}")
        columns = _list_of_mappings(board.get("columns"), f"{where}.columns", add, True, "give at least one column")
        if isinstance(board.get("columns"), list) and not board["columns"]:
            add(f"{where}.columns: empty; a leaderboard needs at least one column")
        indexes: set = set()
        for j, column in columns:
            cwhere = f"{where}.columns[{j}]"
            _check_text(column.get("title"), f"{cwhere}.title", MAX_COLUMN_TITLE, add)
            if _check_text(column.get("key"), f"{cwhere}.key", MAX_COLUMN_KEY, add):
                key = column["key"]
                if key in keys_seen:
                    add(f"{cwhere}.key: '{key}' is also the key of {keys_seen[key]}; column keys must be unique")
                else:
                    keys_seen[key] = cwhere
            _check_index(column, cwhere, indexes, add, "column")
            sorting = column.get("sorting", "desc")
            if sorting not in SORTINGS:
                add(f"{cwhere}.sorting: {sorting!r} is not 'asc' (smaller is better) or 'desc' (larger is better)")
            if "precision" in column and (not _is_int(column["precision"]) or column["precision"] < 0):
                add(f"{cwhere}.precision: expected a non-negative integer of decimals, got {column['precision']!r}")
            if "hidden" in column and not isinstance(column["hidden"], bool):
                add(f"{cwhere}.hidden: expected true or false, got {column['hidden']!r}")
            all_columns.append(column)
        for j, column in columns:
            _check_computation(column, f"{where}.columns[{j}]", indexes, add)
        primary = board.get("primary_index", 0)
        if not _is_int(primary) or primary not in indexes:
            listed = ", ".join(str(x) for x in sorted(indexes)) or "none"
            add(f"{where}.primary_index: {primary!r} is not the index of a column (indexes: {listed})")
    return all_columns


def _check_text(value: Any, where: str, limit: int, add) -> bool:
    if not isinstance(value, str) or not value.strip():
        add(f"{where}: required, a non-empty string; got {_kind(value)}")
        return False
    if len(value) > limit:
        add(f"{where}: {value!r} is {len(value)} characters; Codabench allows at most {limit}")
    return True


def _check_computation(column: Mapping[str, Any], where: str, indexes: set, add) -> None:
    computation = column.get("computation")
    refs = column.get("computation_indexes")
    if computation is None:
        if refs:
            add(f"{where}.computation_indexes: given without a computation; add computation ({', '.join(COMPUTATIONS)})")
        return
    if computation not in COMPUTATIONS:
        add(f"{where}.computation: {computation!r} is not one of {', '.join(COMPUTATIONS)}")
    if not isinstance(refs, list) or not refs:
        add(f"{where}.computation_indexes: required with a computation, a non-empty list of column indexes")
        return
    for ref in refs:
        if not _is_int(ref) or ref not in indexes:
            add(f"{where}.computation_indexes: {ref!r} is not the index of a column of this leaderboard")
        elif ref == column.get("index"):
            add(f"{where}.computation_indexes: the column refers to itself")


def _check_score_keys(columns: Sequence[Mapping[str, Any]], score_keys: Collection[str], add) -> None:
    keyed = [c for c in columns if isinstance(c.get("key"), str)]
    column_keys = [c["key"] for c in keyed]
    computed = {c["key"] for c in keyed if c.get("computation") is not None}
    written = list(dict.fromkeys(score_keys))
    for key in written:
        if key not in column_keys:
            hint = did_you_mean(key, column_keys)
            hint = f" ({hint})" if hint else ""
            add(f"scores.json key '{key}': matches no leaderboard column{hint}; Codabench would drop it silently")
        elif key in computed:
            add(f"scores.json key '{key}': that column has a computation, so Codabench fills it; the scoring program must not write it")
    for key in column_keys:
        if key not in computed and key not in written:
            add(f"leaderboard column '{key}': no scores.json key writes it, so it would stay empty; "
                f"write it in the scoring program or remove the column")


def _check_file_refs(refs: list[tuple[str, Any, bool]], bundle_files: Collection[str] | None, add) -> None:
    present: set[str] = set()
    if bundle_files is not None:
        for name in bundle_files:
            parts = PurePosixPath(str(name).strip("/")).parts
            present.update("/".join(parts[: n + 1]) for n in range(len(parts)))
    for where, ref, key_allowed in refs:
        if not isinstance(ref, str) or not ref.strip():
            add(f"{where}: expected a path in the bundle, got {ref!r}")
            continue
        if key_allowed and _is_uuid(ref):
            continue
        path = PurePosixPath(ref.strip())
        if path.is_absolute() or ".." in path.parts or "\\" in ref:
            add(f"{where}: {ref!r} must be a relative path inside the bundle (no leading '/', '..' or backslash)")
            continue
        if bundle_files is not None and str(path).strip("/") not in present:
            also = " (or the UUID key of a dataset already on Codabench)" if key_allowed else ""
            add(f"{where}: '{ref}' is not in the bundle; add it{also}")


