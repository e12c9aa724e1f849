"""Evaluating official source without running it: the literal values, imports and ``model_id`` tests of a
``select_model`` branch, read from its syntax tree (anything not static raises ``NotStatic``)."""

from __future__ import annotations

import ast
import operator
import posixpath
from typing import Any, Iterable


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}


_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


_CONVERSIONS = {-1: lambda v: v, 115: str, 114: repr, 97: ascii}


_BUILTINS = {"dict": dict, "list": list, "tuple": tuple, "str": str, "int": int, "float": float}


MODEL_ID_KEY = "<model_id>"  # env key for `args.model_id`


class NotStatic(Exception):
    """The expression needs the checkout running to be known."""


# What evaluating a static expression may raise: not static, or static but ill-typed ('a' - 1, 1 / 0).
STATIC_ERRORS = (NotStatic, TypeError, ValueError, ArithmeticError, LookupError)


def static(node: ast.AST | None, env: dict[str, Any]) -> Any:
    """Evaluate literals, names bound in ``env``, f-strings, arithmetic and ``os.path.join`` without running code."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    if isinstance(node, ast.Attribute) and node.attr == "model_id" and MODEL_ID_KEY in env:
        return env[MODEL_ID_KEY]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](static(node.operand, env))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](static(node.left, env), static(node.right, env))
    if isinstance(node, ast.JoinedStr):
        return "".join(str(static(part, env)) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        value = _CONVERSIONS[node.conversion](static(node.value, env))
        return format(value, static(node.format_spec, env) if node.format_spec else "")
    if isinstance(node, (ast.List, ast.Tuple)) and not any(isinstance(e, ast.Starred) for e in node.elts):
        items = [static(element, env) for element in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {static(k, env): static(v, env) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = static(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = static(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return static(node.body if static(node.test, env) else node.orelse, env)
    if isinstance(node, ast.Call) and all(not isinstance(a, ast.Starred) for a in node.args) \
            and all(k.arg for k in node.keywords):
        func = dotted_name(node.func)
        args = [static(a, env) for a in node.args]
        kwargs = {k.arg: static(k.value, env) for k in node.keywords}
        if func in ("os.path.join", "osp.join", "path.join") and not kwargs:
            return posixpath.join(*args)
        if func in _BUILTINS:
            return _BUILTINS[func](*args, **kwargs)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("format", "replace"):
            receiver = static(node.func.value, env)
            if isinstance(receiver, str):
                return getattr(receiver, node.func.attr)(*args, **kwargs)
    raise NotStatic(ast.unparse(node) if node is not None else "")


def import_bindings(node: ast.Import | ast.ImportFrom) -> dict[str, tuple[str, str | None]] | None:
    """Names an import statement binds: name -> (module, attribute or None); None for relative or * imports."""
    if isinstance(node, ast.Import):
        return {alias.asname or alias.name.split(".")[0]:
                (alias.name if alias.asname else alias.name.split(".")[0], None) for alias in node.names}
    if node.level or not node.module or any(alias.name == "*" for alias in node.names):
        return None
    return {alias.asname or alias.name: (node.module, alias.name) for alias in node.names}


def collect_imports(statements: Iterable[ast.stmt]) -> dict[str, tuple[str, str | None]]:
    """The bindings of every absolute import among ``statements`` (e.g. a module's top level)."""
    imports: dict[str, tuple[str, str | None]] = {}
    for node in statements:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.update(import_bindings(node) or {})
    return imports


def is_inert(node: ast.stmt) -> bool:
    """``pass`` or a bare string (a docstring): statements that do nothing."""
    return isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))


def dotted_name(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def _is_model_id(node: ast.AST, id_names: set[str]) -> bool:
    return (isinstance(node, ast.Name) and node.id in id_names) or \
        (isinstance(node, ast.Attribute) and node.attr == "model_id")


def model_id_values(test: ast.AST, id_names: set[str]) -> list[int] | None:
    """The ids an ``if`` test selects: ``model_id == N``, ``N == model_id`` or ``model_id in (N, M)``."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    left, right, op = test.left, test.comparators[0], test.ops[0]
    if isinstance(op, ast.Eq) and _is_model_id(right, id_names):
        left, right = right, left
    if not _is_model_id(left, id_names) or not isinstance(op, (ast.Eq, ast.In)):
        return None
    try:
        value = static(right, {})
    except STATIC_ERRORS:
        return None
    values = [value] if isinstance(op, ast.Eq) else list(value) if isinstance(value, (list, tuple, set)) else []
    ok = values and all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    return values if ok else None


def snippet(node: ast.AST, limit: int = 70) -> str:
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."
