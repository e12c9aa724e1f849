"""Checking the phases of a ``competition.yaml`` as Codabench reads them: their dates, their order, their tasks
and their limits.

Codabench's v2 unpacker (src/apps/competitions/unpackers/v2.py, ``V2Unpacker._unpack_phases``)
sorts the phases by ``index``, reads each date with ``get_datetime``
(src/apps/competitions/unpackers/utils.py) and then refuses an order that is not strictly
sequential (base_unpacker.py, ``_validate_phase_ordering``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from itertools import pairwise
from typing import Any

from ntire_bench.codabench.spec import DEFAULT_QUEUE_TIME_LIMIT_S, TIME_FORMAT
from ntire_bench.codabench.validate_common import Add, check_index, check_keys, check_text, is_int, kind, mappings, says

# The phase fields _unpack_phases reads; anything else is dropped without a word
# (accepts_only_result_submissions, from Codabench's own documentation, is read by no code).
PHASE_FIELDS = frozenset({
    "index", "name", "description", "start", "end", "max_submissions_per_day", "max_submissions",
    "auto_migrate_to_this_phase", "hide_output", "hide_prediction_output", "hide_score_output", "tasks",
    "execution_time_limit", "public_data", "starting_kit",
})
_BOOLS = ("auto_migrate_to_this_phase", "hide_output", "hide_prediction_output", "hide_score_output")
_COUNTS = ("max_submissions", "max_submissions_per_day", "execution_time_limit")
MAX_PHASE_NAME = 256  # Phase.name (src/apps/competitions/models.py)

# The date-times we accept in a string: ISO dates with an optional time and UTC offset. Codabench parses
# strings with dateutil, which reads these exactly as written (and guesses at looser forms, which we refuse).
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{3}(?:\d{3})?)?)?)?(?:Z|[+-]\d{2}:\d{2})?")


def codabench_time(value: Any) -> tuple[datetime | None, str | None]:
    """The moment (naive, UTC) Codabench reads from a phase's ``start`` or ``end``, and our problem with it.

    Codabench (utils.py, ``get_datetime``): an empty value is no date; any ``datetime.date``,
    which includes the ``datetime`` an unquoted YAML timestamp loads as, becomes midnight of its
    day, its time and offset dropped; a string is parsed with its time; in every case the offset
    is then replaced by UTC, not converted. So only a quoted string keeps a time of day.
    """
    if not value:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (str, date)):
        return None, f"expected a quoted date-time 'YYYY-MM-DD HH:MM:SS' (UTC), got {kind(value)}"
    if isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
        read = datetime.combine(day, time())
        meant = read
        if isinstance(value, datetime):
            meant = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        if meant != read:
            return read, (f"{value} is an unquoted YAML timestamp, of which Codabench keeps only the day: it reads "
                          f"{read:%Y-%m-%d %H:%M} UTC; quote it: '{meant:{TIME_FORMAT}}'")
        return read, None
    text = value.strip()
    try:
        if not _ISO_TIME.fullmatch(text):
            raise ValueError
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None, f"{value!r} is not a date-time Codabench reads reliably; write 'YYYY-MM-DD HH:MM:SS' (UTC)"
    offset = moment.utcoffset()
    read = moment.replace(tzinfo=None)
    if offset:
        return read, (f"{value} has a UTC offset, which Codabench discards (it would read {read:%Y-%m-%d %H:%M} UTC); "
                      f"write the time in UTC: '{read - offset:{TIME_FORMAT}}'")
    return read, None


def _task_refs(value: Any, where: str, task_indexes: set, add: Add, missing: str) -> None:
    if not isinstance(value, list) or not value:
        add(f"{where}: required, a non-empty list of task indexes; got {value!r}" + (says(missing) if value is None else ""))
        return
    defined = ", ".join(str(t) for t in sorted(task_indexes)) or "none"
    for ref in value:
        # Indexes are dict keys there: 1 and '1' differ, and an unknown one ends the upload with only its value.
        if not is_int(ref) or ref not in task_indexes:
            add(f"{where}: task {ref!r} is not defined in tasks (defined: {defined})"
                + says(f"Unpacking the bundle failed. Here is the error log: {ref!r}"))


def check_task_list(value: Any, where: str, task_indexes: set, add: Add) -> None:
    """A solution's ``tasks``: task indexes defined in ``tasks`` (v2.py, ``_unpack_solutions``)."""
    _task_refs(value, where, task_indexes, add, "Could not find tasks for solution")


def check_phases(phases: Any, task_indexes: set, add: Add, file_refs: list) -> None:
    """Every rule of ``_unpack_phases``, ``_validate_phase_ordering`` and the competition serializer's phases."""
    items = mappings(phases, "phases", add, True,
                     "give at least one phase" + says("Unable to find any phases for this competition"))
    if isinstance(phases, list) and not phases:
        add("phases: empty; give at least one phase" + says("Unpacking the bundle failed. Here is the error log: "
                                                            "list index out of range"))
    seen: set = set()
    timeline = []
    for i, phase in items:
        where = f"phases[{i}]"
        check_keys(phase, where, PHASE_FIELDS, add, "v2.py _unpack_phases")
        if "index" in phase:
            check_index(phase, where, seen, add, "phase")
        check_text(phase.get("name"), f"{where}.name", MAX_PHASE_NAME, add, "This field may not be null.")
        _task_refs(phase.get("tasks"), f"{where}.tasks", task_indexes, add,
                   "Phases must contain at least one task to be valid")
        start, problem = codabench_time(phase.get("start"))
        if problem:
            add(f"{where}.start: {problem}")
        elif start is None:
            # The unpacker then compares None with the current time while setting the phase statuses.
            add(f"{where}.start: required, a quoted 'YYYY-MM-DD HH:MM:SS' (UTC)"
                + says("Unpacking the bundle failed. Here is the error log: '<' not supported between instances "
                       "of 'NoneType' and 'datetime.datetime'"))
        end, problem = codabench_time(phase.get("end"))
        if problem:
            add(f"{where}.end: {problem}")
        if start and end and end <= start:  # Codabench does not check this; such a phase is never open
            add(f"{where}.end: {end:{TIME_FORMAT}} is not after its start {start:{TIME_FORMAT}}")
        for key in _COUNTS:
            if key in phase and (not is_int(phase[key]) or phase[key] <= 0):
                add(f"{where}.{key}: expected a positive integer, got {phase[key]!r}")
        for key in _BOOLS:
            if key in phase and not isinstance(phase[key], bool):
                add(f"{where}.{key}: expected true or false, got {phase[key]!r}")
        for key in ("starting_kit", "public_data"):
            if key in phase:
                file_refs.append((f"{where}.{key}", phase[key], True))
        order = phase.get("index", 0) if is_int(phase.get("index", 0)) else 0
        timeline.append((order, i, phase, start, end))
    _check_order(timeline, add)


def _check_order(timeline: list, add: Add) -> None:
    # Sorted by index (a missing one counts as 0; the sort is stable), then renumbered 0..n-1: the
    # messages name a phase by its name, else by that new number.
    timeline.sort(key=lambda item: item[0])
    label = {id(phase): phase.get("name", n) for n, (_, _, phase, _, _) in enumerate(timeline)}
    if timeline and timeline[0][2].get("auto_migrate_to_this_phase") is True:
        # src/apps/api/serializers/competitions.py, CompetitionSerializer.validate_phases
        reason = ("You cannot auto migrate in a competition with one phase" if len(timeline) == 1
                  else "You cannot auto migrate to the first phase of a competition")
        add(f"phases[{timeline[0][1]}].auto_migrate_to_this_phase: not allowed on the first phase" + says(reason))
    for (_, i, phase, _, end), (_, j, nxt, nxt_start, _) in pairwise(timeline):
        first, then = label[id(phase)], label[id(nxt)]
        if end is None:
            if not phase.get("end"):
                add(f"phases[{i}].end: missing; every phase except the last needs an end"
                    + says(f"Phase: {first} must have an end time because it has a phase after it."))
        elif nxt_start is None:
            continue
        elif nxt_start < end:
            add(f"phases[{j}].start: {nxt_start:{TIME_FORMAT}} is before phase '{first}' ends ({end:{TIME_FORMAT}}); "
                f"phases must not overlap" + says(f"Phases must be sequential. Phase: {then}starts before Phase: "
                                                  f"{first} has ended"))
        elif nxt_start == end:
            add(f"phases[{j}].start: {nxt_start:{TIME_FORMAT}} is the very moment phase '{first}' ends; end '{first}' "
                f"earlier (e.g. one second before)"
                + says(f"Phases dates conflict. Phase: {then} should start after Phase: {first} has ended"))


def phase_warnings(phases: Any, has_queue: bool) -> list[str]:
    """What Codabench accepts but silently changes: a time limit over the default queue's, without a queue."""
    warnings = []
    if has_queue or not isinstance(phases, list):
        return warnings
    for i, phase in enumerate(phases):
        limit = phase.get("execution_time_limit") if isinstance(phase, Mapping) else None
        if is_int(limit) and limit > DEFAULT_QUEUE_TIME_LIMIT_S:
            # src/apps/competitions/tasks.py, _send_to_compute_worker: min(MAX_EXECUTION_TIME_LIMIT, the phase's)
            # unless the competition has a queue of its own.
            warnings.append(f"phases[{i}].execution_time_limit: {limit} s, but without a queue Codabench cuts it to "
                            f"its default queue's limit ({DEFAULT_QUEUE_TIME_LIMIT_S} s unless the site sets "
                            "MAX_EXECUTION_TIME_LIMIT otherwise); set queue to your own queue's vhost")
    return warnings
