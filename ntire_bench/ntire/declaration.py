"""The declaration of one team imported from an official NTIRE ESR checkout: dataclass, YAML and checks.

One YAML file per ``select_model()`` branch of the checkout's ``test_demo.py``. The file is meant to
be reviewed and edited by the organisers; the runtime builds the model from it. ``to_yaml`` writes a
header whose last line is a digest of every other line, so a later import can tell an edited file
from an untouched one (``is_unedited``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml
from ntire_bench.util.text import did_you_mean

DECLARATION_TAG = "ntire-bench/ntire-team/v1"
BUILD_MODES = ("translated", "official-branch")
DATA_RANGES = (1.0, 255.0)
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
LOADER = re.compile(r"load_state_dict|method:[A-Za-z_][A-Za-z0-9_]*")
DEPLOY_STEP = re.compile(r"(each:)?[A-Za-z_][A-Za-z0-9_]*")
DIGEST_PREFIX = "# digest: sha256="

# YAML key -> attribute name, in the order the file lists them; "tile" is optional (written when set).
FIELDS = {
    "declaration": None, "name": "name", "team": "team", "team_id": "team_id", "checkout": "checkout",
    "origin": "origin", "build": "build", "module": "module", "class": "class_name", "args": "args",
    "kwargs": "kwargs", "checkpoint": "checkpoint", "checkpoint_present": "checkpoint_present",
    "state_dict_key": "state_dict_key", "strict": "strict", "loader": "loader", "data_range": "data_range",
    "forward": "forward", "tile": "tile", "deploy": "deploy", "trust_pickle": "trust_pickle",
    "notes": "notes", "error": "error",
}
OPTIONAL_FIELDS = {"tile"}


class _BlockList(list):
    """A list that YAML writes one item a line (flow style is kept for short scalar lists)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _BlockList, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=False))


class DeclarationError(ValueError):
    """A declaration or a checkout cannot be read; the message is one line naming the file (and field)."""


@dataclass(frozen=True)
class Origin:
    """Where the declaration comes from: a function of a checkout file and the branch's line range."""

    file: str
    function: str
    first_line: int
    last_line: int


@dataclass(frozen=True)
class ForwardWrapper:
    """The organisers' inference wrapper a team needs instead of ``model(x)``: ``function(img, model, tile)``."""

    file: str
    function: str


@dataclass
class TeamDeclaration:
    """How to build, load and run one team of a checkout (the ``ntire-bench/ntire-team/v1`` YAML schema).

    Relative paths are relative to ``checkout``, which goes first on ``sys.path``. The model is
    ``getattr(import_module(module), class_name)(*args, **kwargs)``. With ``loader: load_state_dict``
    its weights are ``torch.load(checkpoint)``, indexed by ``state_dict_key`` (a list: the first key
    present), loaded with ``strict``; ``method:NAME`` calls ``model.NAME(checkpoint)``. The ``deploy``
    steps then run in order: ``NAME`` calls ``model.NAME()``, ``each:NAME`` calls ``NAME()`` on every
    submodule that has it. ``forward`` names the organisers' wrapper ``function(img_lq, model, tile)``
    that replaces ``model(x)``; ``tile`` (optional) is the tile size select_model() returns. An
    ``official-branch`` build runs the organisers' select_model() branch instead of the above.
    """

    name: str
    team: str
    team_id: int
    checkout: str
    origin: Origin
    build: str = "translated"
    module: str | None = None
    class_name: str | None = None
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_present: bool = False
    state_dict_key: str | list[str] | None = None
    strict: bool = True
    loader: str = "load_state_dict"
    data_range: float | None = None
    forward: ForwardWrapper | None = None
    tile: int | None = None
    deploy: list[str] = field(default_factory=list)
    trust_pickle: bool = False
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_mapping(self) -> dict[str, Any]:
        """The YAML mapping, keys in schema order (``tile`` only when set)."""
        mapping: dict[str, Any] = {"declaration": DECLARATION_TAG}
        for key, attribute in FIELDS.items():
            if attribute is None or (key in OPTIONAL_FIELDS and getattr(self, attribute) is None):
                continue
            value = getattr(self, attribute)
            if isinstance(value, (Origin, ForwardWrapper)):
                value = dict(vars(value))
            mapping[key] = value
        return mapping

    def to_yaml(self) -> str:
        """The reviewable file: a header naming the branch, a body digest, then the fields."""
        mapping = self.to_mapping()
        mapping["notes"] = _BlockList(mapping["notes"])  # one note a line, however short
        body = yaml.dump(mapping, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096,
                         default_flow_style=None)
        header = (
            "# ntire-bench submission declaration, generated by `ntire-bench import-ntire` from\n"
            f"# {self.checkout}/{self.origin.file}, {self.origin.function}() branch `model_id == {self.team_id}`"
            f" (lines {self.origin.first_line}-{self.origin.last_line}). Review and edit.\n"
            "# build: translated = built from the fields below; official-branch = the organisers' branch is run.\n"
            "# trust_pickle: set true only after reviewing the team's code (its checkpoint may run code).\n"
        )
        return header + DIGEST_PREFIX + _digest(header + body) + "\n" + body

    @classmethod
    def from_yaml(cls, text: str, path: str | Path = "<declaration>") -> "TeamDeclaration":
        """Parse and check a declaration; DeclarationError names the file and the field at fault."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise DeclarationError(f"{path}: not valid YAML{where}; fix the syntax or re-run the import") from None
        if not isinstance(data, dict):
            raise DeclarationError(f"{path}: expected a mapping of declaration fields, got {type(data).__name__}")
        return _Checker(data, str(path)).declaration()


def read_declaration(path: str | Path) -> TeamDeclaration:
    """Read and check one declaration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DeclarationError(f"{path}: cannot read the declaration ({exc.strerror or exc})") from None
    return TeamDeclaration.from_yaml(text, path)


def is_unedited(text: str) -> bool:
    """True when a generated file still matches the digest in its header (every other line counts)."""
    lines = text.splitlines(keepends=True)
    digests = [index for index, line in enumerate(lines) if line.startswith(DIGEST_PREFIX)]
    if len(digests) != 1:
        return False
    recorded = lines.pop(digests[0])[len(DIGEST_PREFIX):].strip()
    return recorded == _digest("".join(lines))


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class _Checker:
    """Validates one parsed mapping field by field; every failure is one line naming the field."""

    def __init__(self, data: dict[Any, Any], path: str) -> None:
        self.data, self.path = data, path

    def fail(self, key: str, problem: str) -> DeclarationError:
        return DeclarationError(f"{self.path}: field '{key}': {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], *, nullable: bool = False, what: str = "") -> Any:
        value = self.data.get(key)
        if value is None and nullable:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(key, f"must be {what or _kind_name(kind)}{' or null' if nullable else ''}, got {value!r}")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], what: str, *, nullable: bool = False) -> str | None:
        value = self.get(key, str, nullable=nullable, what=what)
        if value is not None and not pattern.fullmatch(value):
            raise self.fail(key, f"must be {what}, got {value!r}")
        return value

    def declaration(self) -> TeamDeclaration:
        unknown = [str(key) for key in self.data if key not in FIELDS]
        if unknown:
            hint = did_you_mean(unknown[0], FIELDS)
            hint = f" ({hint})" if hint else ""
            raise self.fail(unknown[0], f"unknown field{hint}; the fields are {', '.join(FIELDS)}")
        missing = [key for key in FIELDS if key not in self.data and key not in OPTIONAL_FIELDS]
        if missing:
            raise self.fail(missing[0], "missing; every field of the schema must be present (null where unknown)")
        if self.data["declaration"] != DECLARATION_TAG:
            raise self.fail("declaration", f"must be {DECLARATION_TAG!r}, got {self.data['declaration']!r}")
        decl = TeamDeclaration(
            name=self.matching("name", NAME_PATTERN, "letters, digits, '_' and '-'"),
            team=self.matching("team", re.compile(r".+"), "a non-empty string"),
            team_id=self.get("team_id", int),
            checkout=self.checkout(),
            origin=self.origin(),
            build=self.choice("build", BUILD_MODES),
            module=self.matching("module", DOTTED, "a dotted module name", nullable=True),
            class_name=self.matching("class", IDENTIFIER, "a Python identifier", nullable=True),
            args=self.get("args", list),
            kwargs=self.kwargs(),
            checkpoint=self.get("checkpoint", str, nullable=True),
            checkpoint_present=self.get("checkpoint_present", bool),
            state_dict_key=self.state_dict_key(),
            strict=self.get("strict", bool),
            loader=self.matching("loader", LOADER, "'load_state_dict' or 'method:<name>'"),
            data_range=self.data_range(),
            forward=self.forward(),
            tile=self.tile(),
            deploy=self.deploy(),
            trust_pickle=self.get("trust_pickle", bool),
            notes=self.notes(),
            error=self.get("error", str, nullable=True),
        )
        self.consistent(decl)
        return decl

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.data[key]
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def checkout(self) -> str:
        value = self.get("checkout", str)
        if not PurePath(value).is_absolute():
            raise self.fail("checkout", f"must be an absolute path, got {value!r}")
        return value

    def origin(self) -> Origin:
        value = self.get("origin", dict, what="a mapping {file, function, first_line, last_line}")
        if set(value) != {"file", "function", "first_line", "last_line"}:
            keys = sorted(map(str, value))
            raise self.fail("origin", f"must have exactly file, function, first_line, last_line, got {keys}")
        lines = value["first_line"], value["last_line"]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in lines) or lines[0] > lines[1]:
            raise self.fail("origin", f"first_line and last_line must be line numbers, first <= last, got {lines}")
        if not all(isinstance(value[k], str) and value[k] for k in ("file", "function")):
            raise self.fail("origin", "file and function must be non-empty strings")
        return Origin(value["file"], value["function"], *lines)

    def kwargs(self) -> dict[str, Any]:
        value = self.get("kwargs", dict)
        bad = [key for key in value if not (isinstance(key, str) and IDENTIFIER.fullmatch(key))]
        if bad:
            raise self.fail("kwargs", f"keys must be argument names, got {bad[0]!r}")
        return value

    def state_dict_key(self) -> str | list[str] | None:
        value = self.data["state_dict_key"]
        if value is None or (isinstance(value, str) and value):
            return value
        if isinstance(value, list) and value and all(isinstance(k, str) and k for k in value):
            return value
        raise self.fail("state_dict_key", f"must be null, a key, or a list of keys (first present wins), got {value!r}")

    def data_range(self) -> float | None:
        value = self.data["data_range"]
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) in DATA_RANGES:
            return float(value)
        raise self.fail("data_range",
                        f"must be 1.0 or 255.0 (null only for an official-branch build or an error), got {value!r}")

    def forward(self) -> ForwardWrapper | None:
        value = self.data["forward"]
        if value is None:
            return None
        if (isinstance(value, dict) and set(value) == {"file", "function"} and isinstance(value["file"], str)
                and isinstance(value["function"], str) and IDENTIFIER.fullmatch(value["function"])):
            return ForwardWrapper(value["file"], value["function"])
        raise self.fail("forward", f"must be null or {{file: ..., function: <name>}}, got {value!r}")

    def tile(self) -> int | None:
        value = self.data.get("tile")
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return value
        raise self.fail("tile", f"must be null or a positive tile size in pixels, got {value!r}")

    def deploy(self) -> list[str]:
        value = self.get("deploy", list)
        for step in value:
            if not (isinstance(step, str) and DEPLOY_STEP.fullmatch(step)):
                raise self.fail("deploy", f"steps are '<method>' or 'each:<method>', got {step!r}")
        return value

    def notes(self) -> list[str]:
        value = self.get("notes", list)
        if not all(isinstance(note, str) for note in value):
            raise self.fail("notes", "must be a list of strings")
        return value

    def consistent(self, decl: TeamDeclaration) -> None:
        if decl.build == "translated" and decl.error is None:
            for key, value in (("module", decl.module), ("class", decl.class_name), ("data_range", decl.data_range)):
                if value is None:
                    raise self.fail(key, "a translated build needs it; set it or use build: official-branch")
        if decl.checkpoint is None and (decl.state_dict_key is not None or decl.loader != "load_state_dict"):
            raise self.fail("checkpoint", "is null but state_dict_key or loader says how to load one")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", str: "a string", list: "a list", dict: "a mapping"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))
