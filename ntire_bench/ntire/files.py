"""What a team's files in a checkout say, read as source (never imported): where a module is, the packages
it needs that are not installed, a checkpoint delivered under another name, a class's own loader."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".safetensors")


def module_file(checkout: Path, module: str) -> Path | None:
    """The file of a dotted module of the checkout (``models.team18_x`` or a package's ``__init__.py``)."""
    base = checkout.joinpath(*module.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _tree(path: Path | None) -> ast.Module | None:
    if path is None:
        return None
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None


def missing_packages(checkout: Path, module: str) -> dict[str, str]:
    """Third-party packages that the team's module (and its local imports) import at top level but are absent:
    package -> the checkout file that imports it."""
    missing: dict[str, str] = {}
    queue, seen = [module], set()
    while queue:
        name = queue.pop(0)
        path = module_file(checkout, name)
        if path is None or name in seen or (tree := _tree(path)) is None:
            continue
        seen.add(name)
        for node in tree.body:
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = ".".join(name.split(".")[: -node.level]) if node.level else ""
                full = ".".join(p for p in (base, node.module) if p)
                imported = [full, *(f"{full}.{a.name}" for a in node.names)]
            else:
                continue
            for candidate in imported:
                top = candidate.split(".")[0]
                sibling = next((p for p in (path.parent / f"{top}.py", path.parent / top) if p.exists()), None)
                if module_file(checkout, candidate) or (checkout / top).is_dir() or (checkout / f"{top}.py").is_file():
                    queue.append(candidate)
                elif sibling is not None:  # beside the importing file, which put its folder on sys.path
                    queue.append(".".join(sibling.relative_to(checkout).with_suffix("").parts))
                elif top not in sys.stdlib_module_names and top not in missing and not _installed(top):
                    missing[top] = path.relative_to(checkout).as_posix()
    return missing


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _simplified(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def checkpoint_lookalikes(checkout: Path, checkpoint: str, team_id: int) -> list[str]:
    """Checkpoint files beside an absent ``checkpoint`` that are probably it: the same name but for case,
    punctuation or suffix, else the only checkpoint named after the team's id (``team18_*``)."""
    wanted = checkout / checkpoint
    folder = wanted.parent
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES)
    stem = _simplified(Path(checkpoint).stem)
    same = [p for p in files if _simplified(p.stem) == stem]
    if not same:
        prefix = re.compile(rf"team0*{team_id}(?!\d)", re.IGNORECASE)
        same = [p for p in files if prefix.match(p.name)]
        same = same if len(same) == 1 else []
    return [p.relative_to(checkout).as_posix() for p in same]


def own_loader(checkout: Path, module: str, class_name: str) -> str | None:
    """``Class.load_state_dict`` when the team's class (or a base class in the same file) defines one."""
    tree = _tree(module_file(checkout, module))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)} if tree else {}
    pending, seen = [class_name], set()
    while pending:
        name = pending.pop()
        node = classes.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        if any(isinstance(f, ast.FunctionDef) and f.name == "load_state_dict" for f in node.body):
            return f"{name}.load_state_dict"
        pending.extend(base.id for base in node.bases if isinstance(base, ast.Name))
    return None
