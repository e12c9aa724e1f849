"""Typed results records: what a run measured for one submission, with one JSON serialisation.

Every producer (the runner, a failed import, a Codabench upload, a published-figures table)
builds a ``SubmissionResult``; every consumer (resume, scoring, the gate, the leaderboard)
reads one. ``to_json``/``from_json`` are the only way in or out of the file format that
docs/results-format.md documents (and tests/test_records.py checks against these classes).

Non-finite floats (a PSNR of +inf when an output equals its ground truth) are written as the
strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"``, so strict JSON parsers (``JSON.parse``)
accept the files; ``from_json`` turns them back into floats.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

SCHEMA = "ntire-bench/results/v2"

OK, NO_WEIGHTS, FAILED, RUNNING = "ok", "no_weights", "failed", "running"
# ``running``: the run is in progress or was killed; such a record is never ranked.
STATUSES = (OK, NO_WEIGHTS, FAILED, RUNNING)
METRIC_KEYS = ("psnr", "psnr_y", "ssim", "ssim_y")
_NONFINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}


class RecordError(ValueError):
    """A record does not match the results format; the message names the field."""


# --------------------------------------------------------------------------- records



# Quantised outputs of two identical passes may differ by one level where a float lands on a rounding
# boundary (non-associative GPU reductions); a larger spread is nondeterminism.
ROUNDING_LEVELS = 1
# The most a measured spread widens any check by (grey levels): the largest seen on a real team (NTIRE 2025,
# a Gumbel sampler in eval mode, 16). A spread is the model's own to make; beyond this it buys no tolerance.
MAX_ALLOWED_SPREAD = 16

@dataclass
class SampleStats:
    """One image's timed samples (ms): where they sit and how they spread."""

    median: float
    mean: float
    min: float
    max: float
    iqr: float
    cv: float | None
    n: int
    ci_low: float | None = None  # confidence interval of the median, when computed
    ci_high: float | None = None
    warmup: int | None = None  # untimed passes before the samples
    stop_reason: str | None = None  # why sampling stopped: "fixed", "converged", "cap", "budget"


@dataclass
class RuntimeStats:
    """A dataset's runtime (ms): ``mean`` of the per-image medians is the headline."""

    mean: float
    median: float
    min: float
    max: float
    std: float
    runs: list[float] = field(default_factory=list)  # headline of each timing pass
    run_cv: float | None = None
    unstable: bool = False
    ci_low: float | None = None  # interval on ``mean`` (see docs/runtime.md)
    ci_high: float | None = None
    target: float | None = None  # adaptive: the relative half-width each image's median was sampled to


@dataclass
class TimingAudit:
    """What the parent checked about the child's timing claims on one dataset (docs/isolation.md)."""

    requests: int = 0  # timed requests checked
    claimed_ms: float = 0.0  # sum of the samples the child reported
    observed_ms: float = 0.0  # the parent's own clock around the same requests
    min_ratio: float | None = None  # lowest claimed/observed over requests
    retries: int = 0  # requests re-timed after a failed check
    probes_checked: int = 0  # outputs of perturbed repeats compared with the reference
    verified: str | None = None  # outcome of the fresh-process recomputation of one repeat
    max_challenge_ms: float | None = None  # slowest answer about kept outputs (parent's clock)


@dataclass
class ImageResult:
    """Quality and runtime of one image."""

    name: str
    psnr: float | None = None
    psnr_y: float | None = None
    ssim: float | None = None
    ssim_y: float | None = None
    runtime_ms: SampleStats | None = None


@dataclass
class DatasetResult:
    """One dataset: mean quality over images, runtime, and the per-image rows."""

    num_images: int
    psnr: float | None = None
    psnr_y: float | None = None
    ssim: float | None = None
    ssim_y: float | None = None
    threshold: float | None = None  # dB, from datasets.yaml
    runtime_ms: RuntimeStats | None = None
    peak_memory_mb: float | None = None
    measured_at: str | None = None
    cache_key: str | None = None
    timing_audit: TimingAudit | None = None
    images: list[ImageResult] = field(default_factory=list)


@dataclass
class AuditedComplexity:
    """What the official rules do not see: multiply-adds of operators fvcore skips (or a trace cannot see),
    weights that are not parameters, convolutions outside Conv2d layers; and why they differ."""

    flops: int | None = None
    params: int | None = None
    activations: int | None = None
    notes: list[str] = field(default_factory=list)  # one line each, e.g. "FLOPs: fvcore does not count ..."


@dataclass
class ComplexityResult:
    """Params, FLOPs, activations and Conv2d calls at ``input_size``, as the official code counts them."""

    params: int | None
    flops: int | None
    activations: int | None
    num_conv: int | None
    input_size: list[int] = field(default_factory=lambda: [256, 256])
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    peak_memory_mb: float | None = None
    convention: str = "fvcore"  # the FLOP counter ``flops`` follows: "fvcore" or "ntire2023-hooks"
    flops_by_convention: dict[str, int] = field(default_factory=dict)  # the same graph by every convention
    # Figures that come out otherwise on torch.rand than on the official input, with their value there.
    input_dependent: dict[str, int] = field(default_factory=dict)
    counted_by: str = "submission"  # "graph": a fresh worker counted the exported graph; "submission": its own process
    fallback: str | None = None  # why the graph could not be counted, when counted_by is "submission"
    audited: AuditedComplexity | None = None
    checkpoint_params: int | None = None  # floating-point values in the checkpoint's weights (read by the parent)


@dataclass
class CheckpointInfo:
    """The weights a result was measured with."""

    file: str
    path: str | None = None
    sha256: str | None = None
    trusted_pickle: bool = False  # the organisers opted in to unpickling arbitrary code


@dataclass
class PluginInfo:
    """The submission's code: its declaration and every local module it imported, hashed."""

    source: str
    sha256: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)  # path -> sha256


@dataclass
class Settings:
    """How the numbers were measured; results under different settings are never ranked together."""

    device: str
    warmup: int | None = None  # fixed warm-up passes, or the cap in adaptive mode
    repeats: int | None = None  # fixed samples, or the cap in adaptive mode
    runs: int = 1
    threads: int | None = None
    cudnn_benchmark: bool = False
    complexity_size: list[int] = field(default_factory=lambda: [256, 256])
    flop_convention: str = "fvcore"  # the edition's FLOP counter (ComplexityResult.convention)
    isolated: bool = True
    timing: str = "fixed"  # "fixed" | "adaptive"
    target_ci: float | None = None  # adaptive: relative half-width of the median's interval

    def comparable(self) -> dict[str, Any]:
        """The settings that change a measured number (all of them but ``runs``, which adds passes)."""
        out = dataclasses.asdict(self)
        out.pop("runs")
        return out


@dataclass
class Environment:
    """Provenance: versions, device and host facts that make a result reproducible."""

    harness_version: str | None = None
    harness_fingerprint: str | None = None  # sha256 over the harness's own source files
    git_commit: str | None = None
    python: str | None = None
    platform: str | None = None
    torch: str | None = None
    cuda: str | None = None
    cudnn: int | None = None
    device: str | None = None
    device_name: str | None = None
    cpu: str | None = None
    threads: int | None = None
    cpu_affinity: list[int] | None = None  # the cores CPU workers were pinned to (they cannot widen it)
    host: str | None = None
    gpu: dict[str, Any] | None = None  # name, uuid, driver, memory, ... (torch and NVML)
    gpu_telemetry: dict[str, Any] | None = None  # NVML snapshots at the start and end of timing
    executor: dict[str, Any] | None = None  # e.g. the Ray node and retries that produced it


@dataclass
class SandboxInfo:
    """How the submission's process was confined (docs/isolation.md)."""

    mechanism: str  # "bubblewrap" | "landlock" | "none" | "in-process"
    enforced: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass
class SubmissionResult:
    """Everything measured for one submission; the unit of the results store."""

    submission: str
    status: str
    team: str | None = None
    error: str | None = None  # one line, when failed or without weights
    reference: bool = False  # measured and listed, never ranked
    data_range: float | None = None
    complexity: ComplexityResult | None = None
    checkpoint: CheckpointInfo | None = None
    plugin: PluginInfo | None = None
    datasets: dict[str, DatasetResult] = field(default_factory=dict)
    settings: Settings | None = None
    environment: Environment = field(default_factory=Environment)
    sandbox: SandboxInfo | None = None
    opt_ins: list[str] = field(default_factory=list)  # organiser opt-ins in force, e.g. "trust_pickle"
    warnings: list[str] = field(default_factory=list)
    # The largest difference, in grey levels, between two passes over the same image (None: not measured).
    output_spread: int | None = None
    # Wall seconds per stage of the run that measured it (runner/stages.py), by the parent's clock.
    stages: dict[str, float] = field(default_factory=dict)
    run_key: str | None = None
    scored_runtime_ms: float | None = None  # a runtime given as-is (published figures), not measured here
    origin: str | None = field(default=None, compare=False)  # where it was read from; never written

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RecordError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @property
    def label(self) -> str:
        """How messages name this result: its file when read from one, else its name."""
        return self.origin or f"submission '{self.submission}'"

    @property
    def nondeterministic(self) -> bool:
        """Whether two passes over the same image differed by more than float rounding."""
        return self.output_spread is not None and self.output_spread > ROUNDING_LEVELS

    def unranked_reason(self) -> str | None:
        """Why this result is listed but never ranked, from its status alone; None when it may be ranked."""
        if self.status == FAILED:
            return f"failed: {self.error or 'no reason recorded'}"
        if self.status == NO_WEIGHTS:
            return f"no weights: {self.error}" if self.error else "no weights (checkpoint not found)"
        if self.status == RUNNING:
            return "unfinished: the run is in progress or was interrupted; re-run to complete it"
        if self.reference:
            return "reference (listed, never ranked)"
        return None

    def to_json(self) -> dict[str, Any]:
        """The JSON document (a dict of JSON-safe values) written to ``<submission>.json``."""
        body = to_plain(self)
        body.pop("origin", None)
        complexity = body.pop("complexity")
        # Top-level complexity numbers, as in every earlier version of the format.
        for key in ("params", "flops", "activations", "num_conv"):
            body[key] = complexity.pop(key) if complexity else None
        return {"schema": SCHEMA, **body, "complexity": complexity}

    @classmethod
    def from_json(cls, data: Any, strict: bool = False, origin: str | None = None) -> "SubmissionResult":
        """Parse a results document. ``strict`` also refuses unknown fields (forward-compatible reads don't).

        Raises RecordError naming the field when the document does not match the format.
        """
        if not isinstance(data, Mapping):
            raise RecordError("not a JSON object")
        if data.get("schema") != SCHEMA:
            found = data.get("schema")
            hint = "; it was written by another version of ntire-bench, re-run it" if isinstance(found, str) else ""
            raise RecordError(f"schema is {found!r}, expected {SCHEMA!r}{hint}")
        body = {k: v for k, v in data.items() if k != "schema"}
        flat = {k: body.pop(k, None) for k in ("params", "flops", "activations", "num_conv")}
        complexity = body.pop("complexity", None)
        if complexity is not None or any(v is not None for v in flat.values()):
            if complexity is None:
                complexity = {}
            if not isinstance(complexity, Mapping):
                raise RecordError("field complexity must be an object")
            body["complexity"] = {**complexity, **flat}
        record = from_plain(cls, body, "", strict)
        record.origin = origin
        return record


# ------------------------------------------------------------------ (de)serialisation


def to_plain(value: Any) -> Any:
    """A record (or any value holding records) as JSON-safe plain data; non-finite floats as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def from_plain(tp: Any, value: Any, where: str = "", strict: bool = True) -> Any:
    """Check plain data ``value`` against the annotation ``tp`` (a record class, say) and build it.

    Raises RecordError naming the field (under ``where``); ``strict`` also refuses unknown fields.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return from_plain(option, value, where, strict)
            except RecordError as exc:
                errors.append(str(exc))
        raise RecordError(errors[0] if errors else f"field {where or 'value'} must not be null")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise RecordError(f"field {where or tp.__name__} must be an object")
        hints = _hints(tp)
        names = {f.name for f in dataclasses.fields(tp) if f.name != "origin"}
        unknown = sorted(set(value) - names)
        if strict and unknown:
            raise RecordError(f"field {_join(where, unknown[0])} is not part of the results format")
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name not in value or f.name == "origin":
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise RecordError(f"field {_join(where, f.name)} is missing")
                continue
            kwargs[f.name] = from_plain(hints[f.name], value[f.name], _join(where, f.name), strict)
        try:
            return tp(**kwargs)
        except RecordError as exc:
            raise RecordError(f"field {where or 'record'}: {exc}") from None
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"field {where} must be a list")
        (item,) = typing.get_args(tp)
        return [from_plain(item, v, f"{where}[{i}]", strict) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise RecordError(f"field {where} must be an object")
        _key, item = typing.get_args(tp)
        return {str(k): from_plain(item, v, _join(where, str(k)), strict) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"field {where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise RecordError(f"field {where} must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise RecordError(f"field {where} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise RecordError(f"field {where} must be a string, got {value!r}")
        return value
    raise TypeError(f"no decoder for {tp!r}")  # a programming error in this module


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
