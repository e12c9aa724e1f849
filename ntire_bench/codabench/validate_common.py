"""What the ``competition.yaml`` checks share: value kinds, lists of mappings, indexes, unknown keys, and
how a problem quotes Codabench's own message."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ntire_bench.util.text import did_you_mean

Add = Callable[[str], None]  # records one problem (one line)


def kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_uuid(value: Any) -> bool:
    """Whether Django's UUIDField would take ``value`` (a string) as a UUID."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def says(message: str) -> str:
    """The tail of a problem that quotes what Codabench itself reports for it."""
    return f" (Codabench says: {message})"


def mappings(value: Any, where: str, add: Add, required: bool, what: str) -> list[tuple[int, Mapping[str, Any]]]:
    """The mappings of the list ``value`` with their positions; a problem for a missing value or a non-mapping."""
    if value is None:
        if required:
            add(f"{where}: missing; {what}")
        return []
    if not isinstance(value, list):
        add(f"{where}: expected a list, got {kind(value)}")
        return []
    items = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            items.append((i, item))
        else:
            add(f"{where}[{i}]: expected a mapping of fields, got {kind(item)}")
    return items


def check_index(item: Mapping[str, Any], where: str, seen: set, add: Add, label: str,
                missing: str = "", duplicate: str = "") -> Any:
    """``item['index']``: required, an integer >= 0, unique among ``seen``; Codabench's messages when given."""
    index = item.get("index")
    if not is_int(index) or index < 0:
        add(f"{where}.index: required, a non-negative integer; got {index!r}" + (says(missing) if missing else ""))
        return None
    if index in seen:
        add(f"{where}.index: {index} is used by another {label}; {label} indexes must be unique"
            + (says(duplicate.format(index=index)) if duplicate else ""))
    seen.add(index)
    return index


def check_keys(item: Mapping[str, Any], where: str, known: Collection[str], add: Add, reader: str) -> None:
    """Keys Codabench does not read are silently ignored there: a typo would change nothing, so say so."""
    for key in item:
        if key not in known:
            hint = did_you_mean(str(key), known)
            add(f"{where}.{key}: not a field Codabench reads ({reader}), it would be ignored"
                + (f"; {hint}" if hint else ""))


def check_text(value: Any, where: str, limit: int | None, add: Add, missing: str = "This field is required.") -> bool:
    """A required non-empty string of at most ``limit`` characters (the model field's max_length).

    ``missing`` is what Codabench's serializer says when the value is absent: "required" for a
    mapping it validates as given, "may not be null" where the unpacker passed ``.get()``'s None.
    """
    if not isinstance(value, str) or not value.strip():
        add(f"{where}: required, a non-empty string; got {kind(value)}" + (says(missing) if value is None else ""))
        return False
    if limit is not None and len(value) > limit:
        shown = repr(value) if len(value) <= 60 else repr(value[:40]) + "..."
        add(f"{where}: {shown} is {len(value)} characters; Codabench allows at most {limit}"
            + says(f"Ensure this field has no more than {limit} characters."))
    return True
