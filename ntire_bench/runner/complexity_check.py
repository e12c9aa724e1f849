"""Complexity a submission cannot forge (docs/isolation.md, "Complexity").

The worker that loaded the team's model counted it in its own process and exported a TorchScript
trace. That count is a claim. The parent starts a fresh worker that never imports the team's code,
hands it only the trace, and has it count the graph by every year's rules and run the graph on a
few of the dataset's LR images, chosen before the pass. What was counted must be what runs: the
graph's SR images must equal those the model delivered, or the model took another path while it
was traced ("complexity not credible"). The model is traced and counted as the official counters call it,
bare; when its scored images come through an inference wrapper (tiles, padding), the graph is checked against
the model's bare output instead, on the same images cut or mirrored out to the traced size (the one size the
bare model is known to take). Two exceptions are recorded instead of failed, visibly:

- no graph could be exported, or the trace warned that it holds one branch of a data-dependent
  decision: the worker's own count is used (``counted_by: submission``, with the reason);
- the graph's output depends on memory nothing in it wrote: an operator the tracer cannot see (an
  extension op) wrote it. The graph's count is what fvcore, the organisers' rule, counts too, so it
  stays the official figure; the multiply-adds the worker measured in a real forward are the audited one.

The parent also reads the checkpoint itself (``weights_only``) and counts its floating-point weights.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ntire_bench.complexity.rules import FVCORE, NTIRE2023
from ntire_bench.plugins.declaration import SubmissionInfo
from ntire_bench.results.records import MAX_ALLOWED_SPREAD, AuditedComplexity, ComplexityResult, RecordError, from_plain
from ntire_bench.runner.context import RunContext
from ntire_bench.runner.audit import read_sr
from ntire_bench.worker.client import InProcessWorker, IsolatedWorker, WorkerLimits
from ntire_bench.worker.protocol import WorkerFailure

CHECKED_IMAGES = 2  # LR images the graph is run on, drawn before the pass
AUDIT_MARGIN = 0.01  # an audited figure further than this from the official one is noted
SIZE_DEPENDENCE_FACTOR = 2.0  # a fallback's cost per pixel on a scored image beyond this many times the counting one
OUTPUT_TOLERANCE = 1  # grey levels between the graph's SR and the model's (float rounding at a boundary)


class ComplexityNotCredible(WorkerFailure):
    """The counted graph is not the model that runs; the message starts with 'complexity not credible:'."""

    def __init__(self, reason: str):
        super().__init__(f"complexity not credible: {reason}")


@dataclass
class GraphCheck:
    """An LR image the graph is run on, and the SR image the worker delivered for it."""

    name: str
    lr: np.ndarray  # H x W x 3 uint8
    sr: np.ndarray  # 3 x sH x sW uint8
    on: str = "rand"  # the graph it is run on: "rand", or "zeros" (the trace on the official hooked input)


def at_traced_size(lr: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """``lr`` (H x W x 3) cut, or mirrored out, to the size the graph was traced at: the one size the bare model
    is known to take (it was traced there; its inference wrapper may be what pads or tiles other sizes)."""
    height, width = int(size[0]), int(size[1])
    grown = np.pad(lr, ((0, max(0, height - lr.shape[0])), (0, max(0, width - lr.shape[1])), (0, 0)), mode="symmetric")
    return np.ascontiguousarray(grown[:height, :width])


ZEROS_GRAPH = "zeros_graph.pt"  # beside the kept graph: its trace on the zeros, where that recorded another path


def keep_graph(worker: Any, claim: dict[str, Any] | None, into: Path) -> Path | None:
    """Copy the worker's exported graph (and its trace on the zeros, if any) out of its private directory
    (which goes with it) into ``into``; the path of the graph."""
    if not isinstance(claim, dict) or not isinstance(claim.get("graph"), str):
        return None
    source = Path(worker.tmp) / Path(claim["graph"]).name
    if not source.is_file():
        return None
    into.mkdir(parents=True, exist_ok=True)
    if isinstance(claim.get("zeros_graph"), str):
        zeros = Path(worker.tmp) / Path(claim["zeros_graph"]).name
        if not zeros.is_file():
            return None
        shutil.copy2(zeros, into / ZEROS_GRAPH)
    return Path(shutil.copy2(source, into / "graph.pt"))


def zeros_check(worker: Any, info: SubmissionInfo, traced: Sequence[int]) -> GraphCheck:
    """The check of a trace on the zeros: the model's own SR of the official hooked input."""
    zeros = np.zeros((int(traced[0]), int(traced[1]), 3), dtype=np.uint8)
    return GraphCheck("the official input (zeros)", zeros, bare_output(worker, zeros, info.scale), on="zeros")


def bare_output(worker: Any, lr: np.ndarray, scale: int) -> np.ndarray:
    """The model's SR of ``lr`` called directly (no inference wrapper): what its graph, traced as the official
    counters call the model, must reproduce."""
    lr_path, sr_path = worker.tmp / "bare_lr.npy", worker.tmp / "bare_sr.npy"
    np.save(lr_path, lr, allow_pickle=False)
    try:
        worker.request("bare", input=str(lr_path), output=str(sr_path))
        return read_sr(sr_path, lr.shape, scale)
    finally:
        lr_path.unlink(missing_ok=True)


# The load reply's complexity fields (worker/counting.py claim_complexity) and the types each may have.
CLAIM_FIELDS = {"claimed": (dict,), "layer_kinds": (dict,), "graph": (str, type(None)),
                "zeros_graph": (str, type(None)), "graph_error": (str, type(None)), "graph_warnings": (list,)}


def _claimed(claim: dict[str, Any], fields: dict[str, tuple[type, ...]] = CLAIM_FIELDS) -> ComplexityResult:
    if not isinstance(claim, dict):
        raise WorkerFailure(f"the worker's complexity report is malformed: a {type(claim).__name__}, not a mapping")
    if not isinstance(claim.get("claimed"), dict):
        raise WorkerFailure(f"the worker's complexity report is malformed: claimed is "
                            f"{type(claim.get('claimed')).__name__}")
    for key, types in fields.items():
        if not isinstance(claim.get(key), types):
            raise WorkerFailure(f"the worker's complexity report is malformed: {key} is "
                                f"{type(claim.get(key)).__name__}")
    try:
        return from_plain(ComplexityResult, claim.get("claimed"), "complexity")
    except RecordError as exc:
        raise WorkerFailure(f"the worker's complexity report is malformed: {exc}") from None


def counting_worker(ctx: RunContext) -> Any:
    """A fresh worker that will only ever be asked to count (it is never sent the submission). It times nothing,
    so it is not held to the timing cores: started beside the model's worker, it imports while that one loads."""
    limits = WorkerLimits(timeout_s=ctx.config.timeout_s, memory_bytes=ctx.config.memory_limit_bytes,
                          threads=ctx.settings.threads, hidden=ctx.hidden, sandbox=ctx.config.sandbox,
                          gpu=ctx.device.startswith("cuda"))
    return IsolatedWorker(limits, device=ctx.device) if ctx.config.isolate else InProcessWorker(limits)


def count_in_fresh_worker(graph: Path, claim: dict[str, Any], checks: Sequence[GraphCheck], info: SubmissionInfo,
                          ctx: RunContext, counter: Any = None) -> tuple[dict[str, Any], list[np.ndarray | None]]:
    """The fresh worker's counts of ``graph`` and its SR images for ``checks`` (validated; None where the graph
    could not run on that image). ``counter``: a ``counting_worker`` started ahead (closed here either way)."""
    counter = counter if counter is not None else counting_worker(ctx)
    try:
        counter.renew_deadline()
        local = Path(shutil.copy2(graph, counter.tmp / "graph.pt"))
        zeros = graph.parent / ZEROS_GRAPH
        local_zeros = str(shutil.copy2(zeros, counter.tmp / ZEROS_GRAPH)) if zeros.is_file() else None
        inputs, outputs = [], []
        for i, check in enumerate(checks):
            inputs.append(str(counter.tmp / f"lr{i}.npy"))
            outputs.append(str(counter.tmp / f"sr{i}.npy"))
            np.save(inputs[-1], check.lr, allow_pickle=False)
        reply, _ = counter.request("count", graph=str(local), zeros_graph=local_zeros, on=[c.on for c in checks],
                                   device=ctx.device,
                                   size=list(ctx.config.complexity_size), layer_kinds=claim.get("layer_kinds") or {},
                                   inputs=inputs, outputs=outputs, data_range=info.data_range,
                                   pad_to_multiple=info.pad_to_multiple, scale=info.scale)
        counts = reply["result"]
        failures = counts.get("run_failures") or [None] * len(checks)
        images = [None if failure else read_sr(Path(path), check.lr.shape, info.scale)
                  for path, check, failure in zip(outputs, checks, failures)]
    finally:
        counter.close()
    return counts, images


def _int(counts: dict[str, Any], key: str) -> int:
    value = counts.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WorkerFailure(f"the counting worker's {key} is not a count: {value!r}")
    return value


def _differs(audited: int | None, official: int | None) -> bool:
    return audited is not None and official is not None and audited > official * (1 + AUDIT_MARGIN)


def _giga(value: int) -> str:
    return f"{value / 1e9:.2f} G"


def _audit(counts: dict[str, Any], official: ComplexityResult, executed: int | None, opaque: bool) -> AuditedComplexity:
    """The audited figures and a note for each that differs from the official one."""
    fvcore = int(counts["flops"][FVCORE])
    skipped = {k: int(v) for k, v in (counts.get("skipped_flops") or {}).items()}
    flops = fvcore + sum(skipped.values())
    notes = []
    if opaque and executed is not None and executed > flops:
        notes.append(f"FLOPs: the traced graph does not compute the model's output (an operator the tracer cannot "
                     f"see, such as an extension op, writes it); the model's process measured "
                     f"{_giga(executed)} multiply-adds in a real forward against fvcore's {_giga(fvcore)}")
        flops = executed
    elif _differs(flops, fvcore):
        detail = ", ".join(f"{kind} (+{_giga(macs)})" for kind, macs in sorted(skipped.items(), key=lambda kv: -kv[1]))
        notes.append(f"FLOPs: fvcore does not count {detail}")
    params = official.params + _int(counts, "weight_elements") if official.params is not None else None
    if _differs(params, official.params):
        names = ", ".join(counts.get("weight_buffers", [])[:4])
        notes.append(f"params: {params - official.params:,} floating-point values the forward reads as weights are "
                     f"not parameters ({names})")
    activations = _int(counts, "all_conv_activations")
    if _differs(activations, official.activations):
        notes.append(f"activations: {activations - official.activations:,} output elements come from convolutions "
                     "outside Conv2d layers, which the official counter does not hook")
    return AuditedComplexity(flops=flops, params=params, activations=activations, notes=notes)


def _claim_note(claimed: ComplexityResult, claim: dict[str, Any], counted: ComplexityResult) -> str | None:
    """A note when the worker's own count disagrees with its graph's (its counters were tampered with, or it
    behaved differently while hooked)."""
    pairs = [(n, getattr(claimed, n), getattr(counted, n)) for n in ("activations", "num_conv")]
    if isinstance(claimed.params, int) and isinstance(counted.params, int) and claimed.params < counted.params:
        pairs.append(("params", claimed.params, counted.params))  # more as built is a fusing model (see _verified)
    pairs += [(f"FLOPs ({FVCORE})", claimed.flops, counted.flops_by_convention.get(FVCORE)),
              (f"FLOPs ({NTIRE2023})", claimed.flops_by_convention.get(NTIRE2023),
               counted.flops_by_convention.get(NTIRE2023))]
    wrong = [f"{n} {c:,} (the graph: {g:,})" for n, c, g in pairs
             if isinstance(c, int) and isinstance(g, int) and c != g]
    if not wrong:
        return None
    return f"the submission's own process reported {', '.join(wrong)}: only the graph's count is used"


@dataclass(frozen=True)
class ModelProcess:
    """What the parent may still ask the model's own worker (open, idle) where the graph cannot tell; with no
    ``worker``, nothing (each answer is None)."""

    worker: Any = None
    size: Sequence[int] = (256, 256)

    def executed(self, at: Sequence[int] | None = None) -> int | None:
        """The multiply-adds of one real forward of the bare model on ``torch.rand`` at ``size`` (or ``at``)."""
        if self.worker is None:
            return None
        try:
            reply, _ = self.worker.request("executed", size=[int(v) for v in (at or self.size)])
        except WorkerFailure:
            return None
        return reply["macs"] if reply["macs"] >= 0 else None

    def own_count(self, claimed: ComplexityResult) -> ComplexityResult:
        """``claimed`` completed by the worker's own count (the official method in its process): params stay as
        built, as the load reported them. Raises WorkerFailure where the worker cannot count itself."""
        if claimed.flops is not None or self.worker is None:
            return claimed
        reply, _ = self.worker.request("claim", size=[int(v) for v in self.size])
        counted = _claimed({"claimed": reply["result"]}, fields={})
        counted.params, counted.peak_memory_mb = claimed.params, claimed.peak_memory_mb
        return counted


def verified_complexity(claim: dict[str, Any], graph: Path | None, checks: Sequence[GraphCheck], info: SubmissionInfo,
                        ctx: RunContext, convention: str = FVCORE, checkpoint: Path | None = None,
                        spread: int | None = None, model: ModelProcess = ModelProcess(), counter: Any = None
                        ) -> ComplexityResult:
    """The complexity record of a pass that counted complexity (see the module docstring). ``spread``: the
    model's own grey-level spread between two passes, which widens the graph check's tolerance; ``model`` is the
    model's process, asked (a real forward's multiply-adds, its own count) only where the graph cannot tell;
    ``counter`` a ``counting_worker`` started ahead, used or closed here."""
    # Any spread widens it (two passes a level apart can put a third two levels from either), up to a bound: a
    # spread is the model's own to make, and must not switch the check off.
    tolerance = OUTPUT_TOLERANCE + 2 * min(spread, MAX_ALLOWED_SPREAD) if spread else OUTPUT_TOLERANCE
    try:
        result = _verified(claim, graph, checks, info, ctx, convention, tolerance, model, counter)
    finally:
        if counter is not None:
            counter.close()  # a second close, where it counted, does nothing
    result.checkpoint_params = checkpoint_weights(checkpoint, info)
    if result.checkpoint_params is not None and result.audited is not None \
            and _differs(result.checkpoint_params, max(result.params or 0, result.audited.params or 0)):
        result.audited.notes.append(
            f"params: the checkpoint holds {result.checkpoint_params:,} floating-point weights, the model uses "
            f"{max(result.params or 0, result.audited.params or 0):,} of them as parameters or buffers")
    return result


def checkpoint_weights(path: Path | None, info: SubmissionInfo) -> int | None:
    """Floating-point values in the weights the declaration selects from ``path``, read here with
    ``weights_only=True``; None without a checkpoint, or one only the team's own code can unpickle."""
    if path is None or info.trust_pickle:
        return None
    import torch

    from ntire_bench.worker.loading import extract_state_dict

    try:
        state = extract_state_dict(torch.load(path, map_location="cpu", weights_only=True, mmap=True), path,
                                   info.state_dict_key)
    except Exception:  # not a plain state dict (the team's own loader reads it): nothing to count here
        return None
    return sum(int(t.numel()) for t in state.values() if isinstance(t, torch.Tensor) and t.is_floating_point())


def _verified(claim: dict[str, Any], graph: Path | None, checks: Sequence[GraphCheck], info: SubmissionInfo,
              ctx: RunContext, convention: str, tolerance: int, model: ModelProcess, counter: Any = None
              ) -> ComplexityResult:
    claimed = _claimed(claim)
    warnings = [str(w) for w in claim.get("graph_warnings") or []]
    if graph is None:
        reason = str(claim.get("graph_error") or "the worker exported no graph")
        return _fallback(claimed, claim, reason, model, convention, checks)
    counts, images = count_in_fresh_worker(graph, claim, checks, info, ctx, counter)
    if counts.get("graph_failure"):
        return _fallback(claimed, claim, f"its graph cannot be counted without the submission's code "
                         f"({str(counts['graph_failure'])[:160]})", model, convention, checks)
    # A graph that holds the traced size cannot be checked on the images: what runs there is not what was counted
    # (a model could bake the sizes on purpose and keep a cheap path for the counting input).
    baked = next((f for f in counts.get("run_failures") or [] if f), None)
    if baked is not None:
        return _fallback(claimed, claim, f"its graph holds the size it was traced at and cannot run on the images "
                         f"({baked[:160]})", model, convention, checks)
    worst, where = 0, None
    for check, image in zip(checks, images):
        diff = int(np.abs(image.astype(np.int16) - check.sr.astype(np.int16)).max(initial=0))
        if diff > worst:
            worst, where = diff, check.name
    opaque = bool(counts.get("uninitialised_output"))
    if worst > tolerance:
        if warnings or opaque:  # an operator the tracer cannot see may be what writes the output
            reason = (f"its trace holds one branch of a data-dependent decision ({warnings[0][:160]})" if warnings
                      else "its graph reads memory nothing in it wrote (an operator the tracer cannot see), and "
                           "computes another image")
            return _fallback(claimed, claim, reason, model, convention, checks)
        raise ComplexityNotCredible(f"the graph it was counted on computes a different image from the model that "
                                    f"runs (up to {worst} grey levels on {where}): the model takes another path while "
                                    "it is traced or counted")
    by_convention = {str(k): int(v) for k, v in counts["flops"].items()}
    graph_params = _int(counts, "params")
    # The official count is of the model as built. The graph holds it as traced, after its first forward: a model
    # that fuses or drops layers on that call has fewer then. Only a larger count as built is taken from the
    # model's process (a smaller one would be a claim that only flatters it).
    as_built = claimed.params if isinstance(claimed.params, int) and claimed.params > graph_params else None
    dependent = counts.get("input_dependent") if isinstance(counts.get("input_dependent"), dict) else {}
    result = ComplexityResult(
        params=as_built or graph_params, flops=by_convention[convention], activations=_int(counts, "activations"),
        num_conv=_int(counts, "num_conv"), input_size=list(ctx.config.complexity_size),
        unsupported_ops={str(k): int(v) for k, v in counts.get("unsupported_ops", {}).items()},
        peak_memory_mb=claimed.peak_memory_mb, convention=convention, flops_by_convention=by_convention,
        counted_by="graph", input_dependent={str(k): int(v) for k, v in dependent.items()})
    result.audited = _audit(counts, result, model.executed() if opaque else None, opaque)
    if as_built is not None:
        result.audited.notes.append(f"params: {as_built:,} as built, {graph_params:,} after its first forward (it "
                                    "fuses or drops layers when first called); the model as built is counted")
    if result.input_dependent:
        result.audited.notes.append(_dependence_note(result))
    note = _claim_note(claimed, claim, result)
    if note:
        result.audited.notes.append(note)
    return result


def _dependence_note(result: ComplexityResult) -> str:
    """Which figures depend on the input, with both values."""
    shown = ", ".join(f"{name} {getattr(result, name):,} (on torch.rand: {value:,})"
                      for name, value in result.input_dependent.items())
    return (f"input-dependent: {shown}; the official figure is on the official input "
            "(the zeros of an uninitialised torch.FloatTensor)")


def _fallback(claimed: ComplexityResult, claim: dict[str, Any], reason: str, model: ModelProcess, convention: str,
              checks: Sequence[GraphCheck] = ()) -> ComplexityResult:
    """The worker's own count, marked as such (like a weaker sandbox, it shows on the leaderboard).

    Its audited FLOPs are measured in real forwards: at the counting size, and on an image it is scored on
    (per pixel, at the counting size), the larger of the two: a model whose cost depends on the input's size or
    values cannot keep a cheap path for the counting input and be audited on that alone.
    """
    claimed = model.own_count(claimed)
    if claimed.flops is None:
        raise WorkerFailure("the worker's complexity report is malformed: no FLOPs, and no graph to count")
    executed = model.executed()
    by_convention = {str(k): int(v) for k, v in claimed.flops_by_convention.items()} or {FVCORE: claimed.flops}
    if convention not in by_convention:
        raise WorkerFailure(f"the worker's complexity report has no {convention} FLOPs")
    notes = []
    if _differs(executed, claimed.flops):
        notes.append(f"FLOPs: the model's process measured {_giga(executed)} multiply-adds in a real forward against "
                     f"fvcore's {_giga(claimed.flops)}")
    scored = next((c for c in checks if c.on == "rand"), None)
    size = claimed.input_size if len(claimed.input_size or []) == 2 else None
    if scored is not None and size:
        height, width = scored.lr.shape[:2]
        on_image = model.executed((height, width))
        per_count_size = (on_image * size[0] * size[1] // (height * width)
                          if on_image is not None else None)
        if per_count_size is not None and (executed is None or _differs(per_count_size, executed)):
            # Padding a small image to a window multiple costs an honest model up to about twice per pixel; only
            # beyond that does the image's figure replace the audited one (it is noted either way).
            replaces = executed is None or per_count_size > SIZE_DEPENDENCE_FACTOR * executed
            notes.append(f"FLOPs: on {scored.name} ({height}x{width}) the model's process measured "
                         f"{_giga(per_count_size)} multiply-adds per {size[0]}x{size[1]} against "
                         f"{_giga(executed) if executed is not None else 'none measured'} on the counting input: "
                         + ("its cost depends on the input, and the audited figure is the larger" if replaces else
                            f"within {SIZE_DEPENDENCE_FACTOR:g}x (padding to a multiple costs that on small images), "
                            "so the audited figure stays the counting input's"))
            if replaces:
                executed = per_count_size
    claimed.flops, claimed.convention, claimed.flops_by_convention = by_convention[convention], convention, by_convention
    claimed.counted_by, claimed.fallback = "submission", reason
    if claimed.input_dependent:
        notes.append(_dependence_note(claimed))
    # The audited figure adds to the official one, never undercuts it (torch's counter skips what fvcore counts).
    audited_flops = max(executed, claimed.flops) if executed is not None else None
    claimed.audited = AuditedComplexity(flops=audited_flops, params=claimed.params, activations=claimed.activations,
                                        notes=notes)
    return claimed
