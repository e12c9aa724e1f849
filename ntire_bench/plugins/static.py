"""Reading a plugin's declaration from its source, without running it.

Only a module-level ``SUBMISSION = Submission(...)`` (or ``SUBMISSIONS = [...]``) whose fields are
literals (or module-level constants assigned literals) qualifies; anything else is imported by a
sandboxed worker instead (runner/discovery.py).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

from ntire_bench.plugins.declaration import PluginError, Submission, SubmissionInfo


_LITERAL_FIELDS = {f.name for f in dataclasses.fields(Submission)} - {"model", "forward", "deploy", "load_weights"}


def _literal(node: ast.AST, constants: dict[str, Any]) -> Any:
    """A literal, or a module-level constant assigned a literal (``WINDOW = 8``); ValueError otherwise."""
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return ast.literal_eval(node)


def _literal_call(node: ast.AST, constants: dict[str, Any]) -> dict[str, Any] | None:
    """The literal keyword arguments of ``Submission(...)``, or None when any matters and is not literal."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
            and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "Submission"):
        return None
    if node.args:
        return None
    values: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        if keyword.arg == "deploy":
            try:  # method names are plain data; a function is "custom"
                steps = _literal(keyword.value, constants)
                values["deploy"] = list(steps) if isinstance(steps, (list, tuple)) else ["custom"]
            except ValueError:
                values["deploy"] = ["custom"]
            continue
        if keyword.arg in ("forward", "load_weights"):
            values[keyword.arg] = keyword.value  # only whether it is given matters to the parent
            continue
        if keyword.arg not in _LITERAL_FIELDS:
            continue
        try:
            values[keyword.arg] = _literal(keyword.value, constants)
        except ValueError:
            return None
    return values


def read_static(path: Path) -> list[SubmissionInfo] | None:
    """Declarations read from a plugin's source without running it, or None when they are not literal.

    Only a module-level ``SUBMISSION = Submission(...)`` (or ``SUBMISSIONS = [...]``) whose
    fields are literals qualifies; the model factory and forward function are not needed.
    """
    target = path / "__init__.py" if path.is_dir() else path
    try:
        tree = ast.parse(target.read_text(encoding="utf-8"), filename=str(target))
    except (OSError, SyntaxError, ValueError):
        return None  # the worker will report the real error
    declared = None
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                constants.pop(node.targets[0].id, None)  # reassigned to something computed
            if node.targets[0].id == "SUBMISSION":
                declared = [node.value]
            elif node.targets[0].id == "SUBMISSIONS" and isinstance(node.value, (ast.List, ast.Tuple)):
                declared = list(node.value.elts)
    if not declared:
        return None
    infos = []
    for node in declared:
        values = _literal_call(node, constants)
        if values is None:
            return None
        flags = {"custom_forward": "forward" in values, "deploy": values.pop("deploy", [])}
        for key in ("forward", "load_weights"):
            values.pop(key, None)
        key = values.pop("state_dict_key", None)
        try:
            infos.append(SubmissionInfo.from_dict(
                {**values, **flags, "state_dict_key": list(key) if isinstance(key, tuple) else key},
                str(target)))
        except PluginError:
            return None  # let the worker import it and report the real error
    return infos
