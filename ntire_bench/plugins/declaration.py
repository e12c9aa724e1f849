"""Submission plugins: the declaration, and discovery that never runs plugin code in the parent.

A submission is a module (``name.py``) or package (``name/__init__.py``) in a submissions
directory that declares one ``Submission`` as ``SUBMISSION`` (or several as
``SUBMISSIONS``), an NTIRE team declaration (``*.yaml``, written by ``ntire-bench
import-ntire``), or an object published under the entry-point group
``ntire_bench.submissions``::

    from ntire_bench.plugins import Submission
    from ntire_bench.archs.rlfn import RLFN

    SUBMISSION = Submission(name="rlfn", team="NTIRE organisers", model=RLFN,
                            checkpoint="ntire2024_rlfn_baseline.pth", data_range=255.0)

The parent process only ever holds ``SubmissionInfo`` (validated plain data). It reads a
declaration statically when every field is a literal (the usual case), reads YAML
declarations as data, and otherwise asks a sandboxed worker process to import the plugin
and report its declaration (``discovery.py``). Plugin code runs only in worker processes.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

ENTRY_POINT_GROUP = "ntire_bench.submissions"
MODEL_ZOO_ENV = "NTIRE_BENCH_MODEL_ZOO"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
YAML_SUFFIXES = (".yaml", ".yml")


class PluginError(Exception):
    """A submission could not be declared, found or loaded; the message is one line."""


# ------------------------------------------------------------------ the declaration


@dataclass(frozen=True)
class Submission:
    """What a team declares: a model factory and how to feed it.

    ``checkpoint`` is a file name resolved against the model zoo directories; when it is
    None the model has no weights to load (``requires_weights`` must then be False).
    ``data_range`` is the value of white at the model's input and output (1.0 or 255.0).
    ``pad_to_multiple`` reflect-pads the LR input to a multiple (window attention) and crops
    the output back, outside the timed region. ``forward`` replaces ``model(x)`` when given
    (an official inference wrapper; it is timed). ``state_dict_key`` picks the weights inside
    the checkpoint (a list: the first key present), ``strict=False`` loads like the organisers'
    branch does (recorded as a warning). ``trust_pickle`` allows a checkpoint that needs
    arbitrary unpickling (an organiser's opt-in after reviewing the code; recorded).
    ``deploy`` re-parameterises the loaded model (a function, or method names such as
    ``"switch_to_deploy"`` or ``"each:switch_deploy"``); it runs before timing and counting,
    and the fused model's output is checked against the unfused one.
    ``reference`` marks a method that is measured and listed but never ranked.
    """

    name: str
    team: str
    model: Callable[[], Any]
    checkpoint: str | None = None
    sha256: str | None = None
    url: str | None = None
    data_range: float = 1.0
    scale: int = 4
    pad_to_multiple: int = 1
    forward: Callable[[Any, Any], Any] | None = None
    requires_weights: bool = True
    reference: bool = False
    description: str = ""
    state_dict_key: str | tuple[str, ...] | None = None
    strict: bool = True
    trust_pickle: bool = False
    deploy: Callable[[Any], Any] | tuple[str, ...] | None = None
    load_weights: Callable[[Any, str], Any] | None = None  # the team's own loader, e.g. model.load_weights

    def __post_init__(self) -> None:
        check_declaration(self.name, self.data_range, self.scale, self.pad_to_multiple, self.requires_weights,
                          self.checkpoint)
        if not callable(self.model):
            raise PluginError(f"submission {self.name}: model must be a factory (a class or function)")

    def info(self, kind: str = "python") -> "SubmissionInfo":
        """The plain-data view of this declaration that the parent process may hold."""
        key = self.state_dict_key
        return SubmissionInfo(
            name=self.name, team=self.team, kind=kind, checkpoint=self.checkpoint, sha256=self.sha256, url=self.url,
            data_range=float(self.data_range), scale=self.scale, pad_to_multiple=self.pad_to_multiple,
            requires_weights=self.requires_weights, reference=self.reference, description=self.description,
            custom_forward=self.forward is not None, strict=self.strict, trust_pickle=self.trust_pickle,
            state_dict_key=list(key) if isinstance(key, tuple) else key,
            deploy=["custom"] if callable(self.deploy) else list(self.deploy or ()),
        )


def check_declaration(name: Any, data_range: Any, scale: Any, pad_to_multiple: Any, requires_weights: Any,
                      checkpoint: Any) -> None:
    """Validate the fields every kind of declaration shares; PluginError names the submission."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise PluginError(f"submission name {name!r}: use letters, digits, '_' and '-' only")
    if data_range not in (1.0, 255.0):
        raise PluginError(f"submission {name}: data_range must be 1.0 or 255.0, got {data_range!r}")
    if scale != 4:
        raise PluginError(f"submission {name}: only x4 is supported, got scale={scale!r}")
    if not isinstance(pad_to_multiple, int) or pad_to_multiple < 1:
        raise PluginError(f"submission {name}: pad_to_multiple must be an integer >= 1")
    if requires_weights and not checkpoint:
        raise PluginError(f"submission {name}: declare checkpoint=... or set requires_weights=False")


@dataclass(frozen=True)
class SubmissionInfo:
    """A declaration as plain, validated data: all the parent ever knows about a submission."""

    name: str
    team: str
    kind: str = "python"  # "python" | "ntire-team"
    checkpoint: str | None = None
    sha256: str | None = None
    url: str | None = None
    data_range: float = 1.0
    scale: int = 4
    pad_to_multiple: int = 1
    requires_weights: bool = True
    reference: bool = False
    description: str = ""
    custom_forward: bool = False
    strict: bool = True
    trust_pickle: bool = False
    state_dict_key: str | list[str] | None = None
    deploy: list[str] = field(default_factory=list)
    code_root: str | None = None  # where the submission's code lives (its directory, or the NTIRE checkout)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "SubmissionInfo":
        """Validate a declaration reported by a worker (untrusted) or read from a file."""
        if not isinstance(data, dict):
            raise PluginError(f"{where}: a declaration must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PluginError(f"{where}: unknown declaration field {unknown[0]!r}")
        types = {"name": str, "team": str, "kind": str, "description": str, "custom_forward": bool, "strict": bool,
                 "trust_pickle": bool, "reference": bool, "requires_weights": bool, "scale": int,
                 "pad_to_multiple": int}
        for key, tp in types.items():
            if key in data and (not isinstance(data[key], tp) or (tp is int and isinstance(data[key], bool))):
                raise PluginError(f"{where}: field {key} must be {tp.__name__}, got {data[key]!r}")
        for key in ("checkpoint", "sha256", "url", "code_root"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise PluginError(f"{where}: field {key} must be a string or null")
        if "data_range" in data and (isinstance(data["data_range"], bool)
                                     or not isinstance(data["data_range"], (int, float))):
            raise PluginError(f"{where}: field data_range must be a number")
        key = data.get("state_dict_key")
        if key is not None and not isinstance(key, str) and not (
                isinstance(key, list) and all(isinstance(k, str) for k in key)):
            raise PluginError(f"{where}: field state_dict_key must be a string, a list of strings or null")
        deploy = data.get("deploy", [])
        if not isinstance(deploy, list) or not all(isinstance(s, str) for s in deploy):
            raise PluginError(f"{where}: field deploy must be a list of step names")
        info = cls(**{**data, "data_range": float(data.get("data_range", 1.0))})
        check_declaration(info.name, info.data_range, info.scale, info.pad_to_multiple, info.requires_weights,
                          info.checkpoint)
        if info.kind not in ("python", "ntire-team"):
            raise PluginError(f"{where}: unknown kind {info.kind!r}")
        return info


# --------------------------------------------------------------- discovered entries


@dataclass
class PluginEntry:
    """One discovered submission (its validated declaration), or the reason it could not be read."""

    name: str
    source: str  # a plugin file or directory, a declaration .yaml, or "entry-point:<module:attr>"
    info: SubmissionInfo | None = None
    error: str | None = None
    source_sha256: str | None = None
    read_by: str = "static"  # "static" | "worker": how the parent learnt the declaration

    @property
    def ok(self) -> bool:
        return self.info is not None


# ------------------------------------------------------------ static declarations


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


# --------------------------------------------------------------------- checkpoints


def model_zoo_dirs(explicit: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The model zoo search path: ``--model-zoo`` options first, then ``$NTIRE_BENCH_MODEL_ZOO``."""
    dirs = [Path(d) for d in explicit]
    env = os.environ.get(MODEL_ZOO_ENV, "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d]
    return dirs


def resolve_checkpoint(checkpoint: str | None, zoo_dirs: Iterable[Path], base: Path | None = None) -> Path | None:
    """The checkpoint's absolute path: as given when absolute, under ``base`` (an NTIRE checkout), or in the
    first zoo directory that has it; None when it is nowhere."""
    if not checkpoint:
        return None
    candidate = Path(checkpoint)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for directory in ([base] if base is not None else []) + list(zoo_dirs):
        path = Path(directory) / candidate
        if path.is_file():
            return path.resolve()  # workers run in their own directory
    return None
