"""One function of a checkout file with only the top-level statements it needs, found with ``ast``.

The organisers' ``test_demo.py`` imports, at its top, whatever its ``main()`` uses (``utils_image``
pulls in torchvision for ``make_grid``, ``model_summary``, fvcore). Running one team's branch of
``select_model`` (or the ``forward`` wrapper) must need only what that function uses, so the worker
executes a slice of the file: the function, and the imports, assignments, functions and classes it
refers to, transitively, in file order. A statement that binds nothing (``sys.path.insert(...)``) is
kept when every name it uses is kept already, is a standard-library import or a builtin. The
``if __name__ == "__main__":`` block is never kept. Line numbers are the file's own, so tracebacks
name the real lines.
"""

from __future__ import annotations

import ast
import builtins
import sys
import types
from pathlib import Path

MAIN_GUARD = "__main__"
MODULE_NAMES = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__"}


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == MAIN_GUARD for c in test.comparators))


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _bound(node: ast.stmt) -> set[str]:
    """Names a top-level statement binds in the module (imports, assignments, defs, loop and with targets)."""
    names: set[str] = set()
    for child in _walk_module_level(node):
        if isinstance(child, _DEFINITIONS):
            names.add(child.name)
        elif isinstance(child, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in child.names}
        elif isinstance(child, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in child.names if alias.name != "*"}
        elif isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Store, ast.Del)):
            names.add(child.id)
    return names


def _walk_module_level(node: ast.AST):
    """``ast.walk`` that does not enter function, class or lambda bodies, nor comprehensions (their names
    are not the module's)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (*_DEFINITIONS, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                                ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(current))


def _used(node: ast.AST) -> set[str]:
    """Free names a statement reads: every name loaded, less those a function binds for itself."""
    loaded = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local: set[str] = set()
    for function in (n for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
        arguments = function.args
        local |= {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
        local |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        if isinstance(function, ast.Lambda):
            continue
        declared = {name for n in ast.walk(function) if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names}
        stored = {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        imported = {name for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))
                    for name in _bound(n)}
        local |= (stored | imported) - declared
    for comprehension in (n for n in ast.walk(node) if isinstance(n, ast.comprehension)):
        local |= {n.id for n in ast.walk(comprehension.target) if isinstance(n, ast.Name)}
    return loaded - local


def _stdlib_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return all(alias.name.split(".")[0] in sys.stdlib_module_names for alias in node.names)
    return isinstance(node, ast.ImportFrom) and not node.level and bool(node.module) \
        and node.module.split(".")[0] in sys.stdlib_module_names


def slice_for(tree: ast.Module, functions: list[str]) -> ast.Module:
    """The statements of ``tree`` that ``functions`` need, in file order (``KeyError`` if one is not defined)."""
    body = [node for node in tree.body if not _is_main_guard(node)]
    binders: dict[str, list[int]] = {}
    for index, node in enumerate(body):
        for name in _bound(node):
            binders.setdefault(name, []).append(index)
    missing = [f for f in functions if f not in binders]
    if missing:
        raise KeyError(missing[0])
    stdlib = {name for node in body if _stdlib_import(node) for name in _bound(node)}
    ignorable = set(dir(builtins)) | MODULE_NAMES | stdlib
    kept: set[int] = set()
    pending = list(functions)
    while True:
        while pending:
            for index in binders.get(pending.pop(), []):
                if index not in kept:
                    kept.add(index)
                    pending.extend(_used(body[index]))
        needed = {name for index in kept for name in _bound(body[index])}
        side_effects = [i for i, node in enumerate(body) if i not in kept and not _bound(node)
                        and _used(node) <= needed | ignorable and _used(node)]
        if not side_effects:
            break
        for index in side_effects:
            kept.add(index)
            pending.extend(_used(body[index]))
    stars = [i for i, node in enumerate(body) if isinstance(node, ast.ImportFrom)
             and any(a.name == "*" for a in node.names)]
    unresolved = {n for i in kept for n in _used(body[i])} - set(binders) - set(dir(builtins)) - MODULE_NAMES
    if unresolved:  # a star import may be what defines them
        kept.update(stars)
    return ast.Module(body=[body[i] for i in sorted(kept)], type_ignores=[])


def load_sliced(path: Path, functions: list[str], module_name: str) -> types.ModuleType:
    """Execute the slice of ``path`` that ``functions`` need, as a module named ``module_name``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    code = compile(slice_for(tree, functions), str(path), "exec")
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 (the organisers' own code, in the sandboxed worker)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
