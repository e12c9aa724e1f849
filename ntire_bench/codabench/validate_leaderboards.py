"""Checking the leaderboards of a ``competition.yaml``, and the scoring program's ``scores.json`` keys against
their columns.

The unpacker (src/apps/competitions/unpackers/v2.py, ``_unpack_leaderboards``) copies the list
as it is; base_unpacker.py ``_save_leaderboards`` then validates each board with
``LeaderboardSerializer`` and ``ColumnSerializer`` (src/apps/api/serializers/leaderboards.py)
over the models of src/apps/leaderboards/models.py, and ``_save_competition`` attaches only
the first board to every phase.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ntire_bench.codabench.spec import (
    COMPUTATIONS,
    MAX_COLUMN_KEY,
    MAX_COLUMN_TITLE,
    MAX_LEADERBOARD_KEY,
    MAX_LEADERBOARD_TITLE,
    SORTINGS,
    SUBMISSION_RULES,
)
from ntire_bench.codabench.validate_common import Add, check_keys, check_text, is_int, mappings, says
from ntire_bench.util.text import did_you_mean

LEADERBOARD_FIELDS = frozenset({"primary_index", "title", "key", "columns", "hidden", "submission_rule"})
COLUMN_FIELDS = frozenset({"computation", "computation_indexes", "title", "key", "sorting", "index", "hidden",
                           "precision"})


def check_leaderboards(leaderboards: Any, add: Add) -> list[Mapping[str, Any]]:
    """Every rule of the leaderboard and column serializers; returns the columns, for the score-key check."""
    items = mappings(leaderboards, "leaderboards", add, True,
                     "Codabench refuses a bundle without one (note the plural: 'leaderboards')"
                     + says("Could not find leaderboards in the competition yaml"))
    if isinstance(leaderboards, list) and not leaderboards:
        add("leaderboards: empty; give one leaderboard with its columns"
            + says("Unpacking the bundle failed. Here is the error log: list index out of range"))
    if len(items) > 1:
        add(f"leaderboards: {len(items)} given, but Codabench attaches only the first to the phases; merge the "
            "columns into one")
    all_columns: list[Mapping[str, Any]] = []
    keys_seen: dict[str, str] = {}
    for i, board in items:
        where = f"leaderboards[{i}]"
        check_keys(board, where, LEADERBOARD_FIELDS, add, "LeaderboardSerializer")
        check_text(board.get("title"), f"{where}.title", MAX_LEADERBOARD_TITLE, add)
        check_text(board.get("key"), f"{where}.key", MAX_LEADERBOARD_KEY, add)
        rule = board.get("submission_rule")
        if rule is not None and rule not in SUBMISSION_RULES:
            add(f"{where}.submission_rule: {rule!r} is not one of {', '.join(SUBMISSION_RULES)}"
                + says(f'"{rule}" is not a valid choice.'))
        if "hidden" in board and not isinstance(board["hidden"], bool):
            add(f"{where}.hidden: expected true or false, got {board['hidden']!r}")
        columns = mappings(board.get("columns"), f"{where}.columns", add, True,
                           "give at least one column" + says("This field is required."))
        if isinstance(board.get("columns"), list) and not board["columns"]:
            add(f"{where}.columns: empty; a leaderboard needs at least one column"
                + says("Leaderboards require at least 1 column"))
        indexes: set = set()
        for j, column in columns:
            _check_column(column, f"{where}.columns[{j}]", indexes, keys_seen, add)
            all_columns.append(column)
        for j, column in columns:
            _check_computation(column, f"{where}.columns[{j}]", indexes, add)
        # Codabench stores any primary_index >= 0, but its leaderboard pages then look that column up
        # (LeaderboardEntriesSerializer.get_submissions) and fail: refuse it here.
        primary = board.get("primary_index", 0)
        if not is_int(primary) or primary not in indexes:
            listed = ", ".join(str(x) for x in sorted(indexes)) or "none"
            add(f"{where}.primary_index: {primary!r} is not the index of a column (indexes: {listed})")
    return all_columns


def _check_column(column: Mapping[str, Any], where: str, indexes: set, keys_seen: dict[str, str], add: Add) -> None:
    check_keys(column, where, COLUMN_FIELDS, add, "ColumnSerializer")
    check_text(column.get("title"), f"{where}.title", MAX_COLUMN_TITLE, add)
    if check_text(column.get("key"), f"{where}.key", MAX_COLUMN_KEY, add):
        key = column["key"]
        if key in keys_seen:
            add(f"{where}.key: '{key}' is also the key of {keys_seen[key]}; column keys must be unique"
                + says("Columns must have unique keys!"))
        else:
            keys_seen[key] = where
    index = column.get("index")
    if not is_int(index) or index < 0:
        add(f"{where}.index: required, a non-negative integer; got {index!r}"
            + says("This field is required." if index is None else "Ensure this value is greater than or equal to 0."))
    elif index in indexes:
        add(f"{where}.index: {index} is used by another column; column indexes must be unique"
            + says("Columns must have unique indexes!"))
    else:
        indexes.add(index)
    sorting = column.get("sorting", "desc")
    if sorting not in SORTINGS:
        add(f"{where}.sorting: {sorting!r} is not 'asc' (smaller is better) or 'desc' (larger is better)"
            + says(f'"{sorting}" is not a valid choice.'))
    if "precision" in column and (not is_int(column["precision"]) or column["precision"] < 0):
        add(f"{where}.precision: expected a non-negative integer of decimals, got {column['precision']!r}")
    if "hidden" in column and not isinstance(column["hidden"], bool):
        add(f"{where}.hidden: expected true or false, got {column['hidden']!r}")


def _check_computation(column: Mapping[str, Any], where: str, indexes: set, add: Add) -> None:
    """ColumnSerializer.validate and LeaderboardSerializer.validate_columns: a computation and its columns."""
    computation = column.get("computation")
    refs = column.get("computation_indexes")
    if computation is None:
        if refs:
            add(f"{where}.computation_indexes: given without a computation; add computation ({', '.join(COMPUTATIONS)})"
                + says("Cannot add computation columns without a computation function set"))
        return
    if computation not in COMPUTATIONS:
        add(f"{where}.computation: {computation!r} is not one of {', '.join(COMPUTATIONS)}"
            + says(f'"{computation}" is not a valid choice.'))
    if refs is None:
        add(f"{where}.computation_indexes: required with a computation, a non-empty list of column indexes"
            + says("Column with computation must have at least 1 column selected for the computation to act upon"))
        return
    if not isinstance(refs, list) or not refs:
        # The serializer joins the items of what it gets with commas: a string "1,2" becomes "1,,,2".
        add(f"{where}.computation_indexes: expected a non-empty list of column indexes, got {refs!r}"
            + says("Bad value for index, should be an integer but received: ."))
        return
    for ref in refs:
        if not is_int(ref):
            add(f"{where}.computation_indexes: {ref!r} is not a column index"
                + says(f"Bad value for index, should be an integer but received: {ref}."))
        elif ref == column.get("index"):
            add(f"{where}.computation_indexes: the column refers to itself"
                + says(f"Column with index {ref} referencing itself. Cannot self-reference, must be other columns."))
        elif ref not in indexes:
            add(f"{where}.computation_indexes: {ref!r} is not the index of a column of this leaderboard"
                + says(f"Column index {ref} does not exist in available indexes {sorted(indexes)}"))


def check_score_keys(columns: Sequence[Mapping[str, Any]], score_keys: Collection[str], add: Add) -> None:
    """``scores.json`` keys against the columns: Codabench stores a score under the column of that key and skips
    other keys without a word, and fills computed columns itself (src/apps/api/views/submissions.py,
    ``upload_submission_scores``; src/apps/competitions/models.py, ``Submission.calculate_scores``)."""
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
            add(f"scores.json key '{key}': that column has a computation, so Codabench fills it; the scoring program "
                "must not write it")
    for key in column_keys:
        if key not in computed and key not in written:
            add(f"leaderboard column '{key}': no scores.json key writes it, so it would stay empty; "
                f"write it in the scoring program or remove the column")
