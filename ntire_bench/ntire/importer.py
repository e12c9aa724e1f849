"""Import an official NTIRE ESR checkout: one reviewable declaration per ``select_model()`` branch.

The organisers' ``test_demo.py`` builds every team in one ``if/elif model_id == N:`` branch. This
module finds those branches with ``ast`` (the checkout's code is never imported or executed here),
reads each with ``ntire_branch.BranchReader`` and declares it as a ``TeamDeclaration``. A branch
holding statements it does not recognise is declared ``official-branch``: the runtime then runs the
organisers' own branch, and the notes name the statements and their lines. No branch is dropped.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ntire_bench.ntire.branch import BranchReader, Frame
from ntire_bench.ntire.files import checkpoint_lookalikes, missing_packages, module_file, own_loader
from ntire_bench.ntire.static_eval import collect_imports, is_inert, model_id_values, snippet
from ntire_bench.ntire.declaration import (DATA_RANGES, DeclarationError, ForwardWrapper, Origin, TeamDeclaration, is_unedited)

DEMO_FILE = "test_demo.py"
SELECT_FUNCTION = "select_model"


@dataclass
class ImportReport:
    """What an import found and wrote; ``kept`` are edited declarations left as they were."""

    checkout: Path
    declarations: list[TeamDeclaration]
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    kept_from_other: list[tuple[Path, str]] = field(default_factory=list)  # (file, the checkout it comes from)
    skipped: list[tuple[int | None, str]] = field(default_factory=list)
    summary: Path | None = None


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise DeclarationError(f"{path}: no such file; point at the root of an NTIRE ESR checkout "
                               f"(the folder holding {DEMO_FILE})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{path}: cannot read it ({exc})") from None
    except SyntaxError as exc:
        raise DeclarationError(f"{path}: syntax error at line {exc.lineno} ({exc.msg}); "
                               "fix the file and import again") from None


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _locate_select_model(checkout: Path) -> tuple[str, ast.FunctionDef, list[tuple[str, ast.Module]]]:
    """select_model() in test_demo.py, or in the checkout module test_demo.py imports it from."""
    demo = checkout / DEMO_FILE
    demo_tree = _parse(demo)
    trees = [(DEMO_FILE, demo_tree)]
    if SELECT_FUNCTION in _functions(demo_tree):
        return DEMO_FILE, _functions(demo_tree)[SELECT_FUNCTION], trees
    for node in demo_tree.body:
        if isinstance(node, ast.ImportFrom) and not node.level and node.module \
                and any(a.name == SELECT_FUNCTION for a in node.names) \
                and (path := module_file(checkout, node.module)):
            tree = _parse(path)
            if SELECT_FUNCTION in _functions(tree):
                relative = path.relative_to(checkout).as_posix()
                return relative, _functions(tree)[SELECT_FUNCTION], [*trees, (relative, tree)]
    raise DeclarationError(f"{demo}: no {SELECT_FUNCTION}() function, defined or imported from the checkout; "
                           "is this an NTIRE ESR checkout?")


def _forward_wrappers(checkout: Path, trees: list[tuple[str, ast.Module]],
                      id_names: set[str]) -> dict[int, ForwardWrapper]:
    """Per model_id, the function that an ``if model_id == N:`` outside select_model() calls with the model."""
    wrappers: dict[int, ForwardWrapper] = {}
    for relative, tree in trees:
        where = {name: relative for name in _functions(tree)}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and not node.level and node.module \
                    and (path := module_file(checkout, node.module)):
                where.update({a.asname or a.name: path.relative_to(checkout).as_posix() for a in node.names})
        for function in _functions(tree).values():
            if function.name == SELECT_FUNCTION:
                continue
            for branch in ast.walk(function):
                if not isinstance(branch, (ast.If, ast.IfExp)) or not (ids := model_id_values(branch.test, id_names)):
                    continue
                body = branch.body if isinstance(branch.body, list) else [branch.body]
                for call in (n for part in body for n in ast.walk(part) if isinstance(n, ast.Call)):
                    name = call.func.id if isinstance(call.func, ast.Name) else None
                    passes_model = any(isinstance(a, ast.Name) and "model" in a.id.lower()
                                       for a in [*call.args, *(k.value for k in call.keywords)])
                    if name in where and name != function.name and passes_model:
                        for model_id in ids:
                            wrappers.setdefault(model_id, ForwardWrapper(where[name], name))
    return wrappers


def _frame(checkout: Path, relative: str, function: ast.FunctionDef, tree: ast.Module) -> tuple[Frame, ast.If]:
    id_names = {a.arg for a in function.args.args if a.arg == "model_id"}
    for node in function.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr == "model_id":
            id_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    chain = next((n for n in function.body if isinstance(n, ast.If) and model_id_values(n.test, id_names)), None)
    if chain is None:
        raise DeclarationError(f"{checkout / relative}: {SELECT_FUNCTION}() has no `if model_id == N:` branches "
                               "to import")
    returned = ("model", "name", "data_range", "tile")
    last = function.body[-1]
    if isinstance(last, ast.Return) and isinstance(last.value, ast.Tuple) and len(last.value.elts) == 4 \
            and all(isinstance(e, ast.Name) for e in last.value.elts):
        returned = tuple(e.id for e in last.value.elts)  # type: ignore[assignment]
    around = [n for n in function.body if n is not chain]
    return Frame(relative, id_names, returned, collect_imports(tree.body), around), chain


def _chain(chain: ast.If, id_names: set[str]) -> tuple[list[tuple[list[int] | None, ast.If]], list[ast.stmt]]:
    branches, node = [], chain
    while True:
        branches.append((model_id_values(node.test, id_names), node))
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
            node = node.orelse[0]
        else:
            return branches, node.orelse


def parse_checkout(checkout: str | Path) -> tuple[list[TeamDeclaration], list[tuple[int | None, str]]]:
    """Declarations for every branch of the checkout's select_model(), and the branches that could not be read."""
    checkout = Path(checkout).resolve()
    if not checkout.is_dir():
        raise DeclarationError(f"{checkout}: not a directory; point at the root of an NTIRE ESR checkout")
    relative, function, trees = _locate_select_model(checkout)
    frame, chain = _frame(checkout, relative, function, dict(trees)[relative])
    wrappers = _forward_wrappers(checkout, trees, frame.id_names)
    branches, final_else = _chain(chain, frame.id_names)
    declarations, skipped = [], []
    for ids, node in branches:
        if ids is None:
            reason = f"line {node.lineno}: `{snippet(node.test)}` does not select a model_id; not imported"
            skipped.append((None, reason))
        for model_id in ids or []:
            declarations.append(_declare(checkout, frame, model_id, node, wrappers.get(model_id)))
    if final_else and not (len(final_else) == 1 and isinstance(final_else[0], ast.Raise)):
        reason = f"line {final_else[0].lineno}: the final else builds a model for any other id; not imported"
        skipped.append((None, reason))
    _name_uniquely(declarations)
    return declarations, skipped


def _declare(checkout: Path, frame: Frame, model_id: int, node: ast.If,
             wrapper: ForwardWrapper | None) -> TeamDeclaration:
    origin = Origin(frame.file, SELECT_FUNCTION, node.lineno, node.body[-1].end_lineno or node.lineno)
    declaration = TeamDeclaration(name="", team=f"{model_id:02}", team_id=model_id, checkout=str(checkout),
                                  origin=origin, forward=wrapper)
    if all(is_inert(statement) for statement in node.body):
        declaration.error = "empty branch (`pass`): the organisers left no model for this id"
        return declaration
    reader = BranchReader(frame, model_id)
    before = [s for s in frame.around if s.lineno < node.lineno]
    reader.read([*before, *node.body, *(s for s in frame.around if s.lineno > node.lineno)])
    branch_name, data_range, tile = (reader.env.get(v) for v in frame.returned[1:])
    notes = declaration.notes
    if isinstance(branch_name, str) and branch_name:
        declaration.team = branch_name
    else:
        notes.append("the branch sets no static name; named after its model_id")
    if isinstance(data_range, (int, float)) and not isinstance(data_range, bool) and float(data_range) in DATA_RANGES:
        declaration.data_range = float(data_range)
    declaration.tile = tile if isinstance(tile, int) and not isinstance(tile, bool) and tile > 0 else None
    official = bool(reader.unrecognised) or reader.pickled_model_line is not None
    visible = reader.ctor
    if visible is None and official and len(set(reader.branch_imports)) == 1:
        visible = reader.branch_imports[0]  # the class shows even when the branch does not call it
    if visible:
        declaration.module, declaration.class_name = visible
    declaration.args, args_tuples = _plain(reader.args, "positional arguments")
    declaration.kwargs, kwargs_tuples = _plain(reader.kwargs, "")
    weights = reader.weights or (reader.first_load if reader.unrecognised else None)
    if weights is not None:
        declaration.checkpoint, declaration.state_dict_key = weights.path, weights.key
        declaration.checkpoint_present = (checkout / weights.path).is_file()
    declaration.strict, declaration.loader, declaration.deploy = reader.strict, reader.loader, reader.deploy
    declaration.build = "official-branch" if official else "translated"
    if not declaration.strict:
        notes.append("official branch loads with strict=False")
    if weights is None and not official:
        notes.append("the branch loads no weights")
    if weights is not None and not declaration.checkpoint_present:
        notes.append(f"checkpoint {weights.path} is not in the checkout")
        notes.extend(f"{other} is there: if it is this team's, set checkpoint: {other}"
                     for other in checkpoint_lookalikes(checkout, weights.path, model_id))
    if reader.weights and reader.weights.weights_only is False and reader.pickled_model_line is None:
        notes.append("the branch loads with weights_only=False; the runtime does so only with trust_pickle: true")
    notes.extend(f"line {line}: the branch moves the model to CUDA; the runtime places it on the chosen device"
                 for line in dict.fromkeys(reader.cuda_lines))
    if args_tuples + kwargs_tuples:
        notes.append(f"tuple arguments are written as YAML lists: {', '.join(args_tuples + kwargs_tuples)}")
    if declaration.module:
        if module_file(checkout, declaration.module) is None:
            notes.append(f"module {declaration.module} has no file in the checkout")
        for package, importer in missing_packages(checkout, declaration.module).items():
            notes.append(f"{importer} imports {package}, which is not installed here")
        loader = own_loader(checkout, declaration.module, declaration.class_name or "")
        if loader and declaration.loader == "load_state_dict" and weights is not None:
            notes.append(f"{loader}() is the team's own: the runtime loads the weights through it, as the branch does")
    if reader.pickled_model_line is not None:
        notes.append(f"line {reader.pickled_model_line}: the checkpoint is a pickled whole model; "
                     "review the team's code, then set trust_pickle: true to let the runtime unpickle it")
    for statement in reader.unrecognised:
        inside = origin.first_line <= statement.lineno <= origin.last_line
        shared = "" if inside else " (outside the branch, shared by all)"
        notes.append(f"line {statement.lineno}{shared}: `{snippet(statement)}` is not recognised; "
                     "the runtime runs the official branch")
    if not official:
        if reader.ctor is None:
            declaration.error = "the branch builds no model that could be read"
        elif declaration.data_range is None:
            declaration.error = f"data_range is {data_range!r}; it must be 1.0 or 255.0"
    return declaration


def _plain(value: Any, where: str) -> tuple[Any, list[str]]:
    """YAML-safe copy of a static value (tuples become lists) and the argument names that held tuples."""
    tuples: list[str] = []

    def convert(item: Any, name: str) -> Any:
        if isinstance(item, tuple):
            tuples.append(name)
        if isinstance(item, (list, tuple)):
            return [convert(element, name) for element in item]
        if isinstance(item, dict):
            return {key: convert(element, name or str(key)) for key, element in item.items()}
        return item

    plain = [convert(v, where) for v in value] if isinstance(value, list) else convert(value, where)
    return plain, list(dict.fromkeys(tuples))


def _name_uniquely(declarations: list[TeamDeclaration]) -> None:
    """Submission names from the branches' names ("42_[FEAN]" -> "team42_FEAN"), de-duplicated in file order."""
    taken: set[str] = set()
    for declaration in declarations:
        cleaned = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]", "_", declaration.team)).strip("_")
        if re.match(r"-?\d", cleaned):
            name = f"team{cleaned}"
        elif cleaned.lower().startswith("team"):
            name = cleaned
        else:
            name = "_".join(filter(None, [f"team{declaration.team_id:02}", cleaned]))
        candidate, counter = name, 1
        while candidate in taken:
            counter += 1
            candidate = f"{name}_{counter}"
        declaration.name = candidate
        taken.add(candidate)


def import_checkout(checkout: str | Path, out_dir: str | Path, overwrite: bool = False,
                    keep_existing: bool = False) -> ImportReport:
    """Write ``<out_dir>/<name>.yaml`` for every branch and ``IMPORT.md``; edited files are kept unless overwrite.

    A declaration of the same name already in ``out_dir`` from another checkout (several single-team
    checkouts, each carrying the baseline) is kept with ``keep_existing``, replaced with ``overwrite``,
    and is an error otherwise (before anything is written).
    """
    declarations, skipped = parse_checkout(checkout)
    out_dir = Path(out_dir)
    report = ImportReport(Path(checkout).resolve(), declarations, skipped=skipped)
    plans = []
    for declaration in declarations:
        path, text = out_dir / f"{declaration.name}.yaml", declaration.to_yaml()
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        other = _other_checkout(current, declaration) if current is not None else None
        if other is not None and not overwrite:
            if not keep_existing:
                raise DeclarationError(
                    f"{path}: already declares {declaration.name} from {other}, and "
                    f"{declaration.checkout}/{declaration.origin.file} declares it too (model_id {declaration.team_id}); "
                    "pass --keep-existing to keep the one there, or --overwrite to replace it")
            report.kept_from_other.append((path, other))
        elif current is not None and not overwrite and current != text and not is_unedited(current):
            report.kept.append(path)
        else:
            plans.append((path, text))
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in plans:
        _write_atomically(path, text)
        report.written.append(path)
    report.summary = out_dir / "IMPORT.md"
    _write_atomically(report.summary, summary_markdown(report))
    return report


def _other_checkout(current: str, declaration: TeamDeclaration) -> str | None:
    """``checkout/file`` of an existing declaration when it comes from another checkout than ``declaration``."""
    try:
        existing = yaml.safe_load(current)
    except yaml.YAMLError:
        return None
    if not isinstance(existing, dict) or not isinstance(existing.get("checkout"), str):
        return None
    if Path(existing["checkout"]) == Path(declaration.checkout):
        return None
    origin = existing.get("origin")
    file = origin.get("file", DEMO_FILE) if isinstance(origin, dict) else DEMO_FILE
    return f"{existing['checkout']}/{file}"


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def summary_markdown(report: ImportReport) -> str:
    """IMPORT.md: one row per branch (id, name, build mode, class, checkpoint, range, strict, notes)."""
    declarations = report.declarations
    count = {mode: sum(d.build == mode and d.error is None for d in declarations)
             for mode in ("translated", "official-branch")}
    lines = [
        "# NTIRE checkout import", "",
        f"Source: `{report.checkout}`: {len(declarations)} declarations ({count['translated']} translated, "
        f"{count['official-branch']} official-branch, {sum(d.error is not None for d in declarations)} with an error).",
    ]
    if report.kept:
        lines.append(f"Kept as edited (not overwritten): {', '.join(p.name for p in report.kept)}.")
    if report.kept_from_other:
        lines.append("Kept as imported from another checkout: "
                     f"{', '.join(f'{p.name} ({source})' for p, source in report.kept_from_other)}.")
    lines += ["", "| id | name | build | class | checkpoint present | data range | strict | notes |",
              "|---:|---|---|---|---|---:|---|---|"]
    for d in declarations:
        build = f"error: {d.error}" if d.error else d.build
        present = "-" if d.checkpoint is None else "yes" if d.checkpoint_present else "no"
        cells = [str(d.team_id), d.name, build, d.class_name or "-", present,
                 "-" if d.data_range is None else f"{d.data_range:g}", str(d.strict).lower(), "; ".join(d.notes)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if report.skipped:
        lines += ["", "Not imported:", *(f"- {reason}" for _, reason in report.skipped)]
    return "\n".join(lines) + "\n"
