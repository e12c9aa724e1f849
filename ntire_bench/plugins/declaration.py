"""The submission declaration: what a team declares (``Submission``) and the plain data the parent holds.

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
declarations as data (static.py), and otherwise asks a sandboxed worker process to import the
plugin and report its declaration (runner/discovery.py). Plugin code runs only in worker processes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable

ENTRY_POINT_GROUP = "ntire_bench.submissions"
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


# --------------------------------------------------------------------- checkpoints


