"""Complexity on the worker's side: what the loaded model's process claims, and the graph it exports.

A worker that loads a submission reports its params as built (its own FLOP and activation counts only when
asked: they are used only where no graph can be counted outside it), the hooked layer types of its modules by name
(how a subclass of ``nn.Conv2d`` is still counted as one), and a TorchScript trace of the model
that a fresh worker counts without the submission's code (``count_graph``, complexity/clean.py).
Asked later (``executed`` request, only where the graph cannot tell), it also measures the multiply-adds
torch's flop counter sees in one real forward: the audited figure where an operator is invisible to a trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ntire_bench.complexity.clean import count_exported, export_trace, load_exported, run_exported
from ntire_bench.complexity.counting import count_params, measure_complexity, official_input, peak_memory_mb
from ntire_bench.complexity.rules import HOOKED_KINDS
from ntire_bench.results.records import to_plain
from ntire_bench.worker.forward import model_input

GRAPH_FILE = "graph.pt"
ZEROS_GRAPH_FILE = "zeros_graph.pt"  # the trace on the official hooked input, where it differs
_HOOKED_TYPES = tuple(getattr(nn, kind) for kind in HOOKED_KINDS)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's type and the line of its message that says what failed (TorchScript puts a generic line
    first, its traceback after, and the error itself last)."""
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    line = text[-1] if len(text) > 1 and "TorchScript interpreter" in text[0] else (text[0] if text else "")
    return f"{type(exc).__name__}: {line}"[:limit]


def layer_kinds(module: nn.Module) -> dict[str, str]:
    """The hooked layer type (``Conv2d``, ``LeakyReLU``, ...) of every module that is one, by qualified name."""
    kinds = {}
    for name, child in module.named_modules():
        for kind, cls in zip(HOOKED_KINDS, _HOOKED_TYPES):
            if isinstance(child, cls):
                kinds[name] = kind
                break
    return kinds


def executed_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds torch's flop counter sees in one forward on ``x`` (it counts 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return int(counter.get_total_flops() // 2)


def own_count(module: nn.Module, size: tuple[int, int], device: torch.device) -> dict[str, Any]:
    """The worker's own count by the official method (fvcore and the hooks, in this process): used only where
    no graph can be counted outside it, so asked for only then (the ``claim`` request)."""
    return to_plain(measure_complexity(module, size, device=str(device)))


def claim_complexity(module: nn.Module, size: tuple[int, int], device: torch.device, workdir: Path) -> dict[str, Any]:
    """The load reply's complexity: params as built, layer kinds, the exported graphs.

    The graph is traced on ``torch.rand(1, 3, H, W)``, the official FLOP input, and again on the zeros the
    official hooked counters see; the second (``zeros_graph``) is kept only when it recorded another computation
    (the model routes by its input's values). A model that cannot be traced or saved (a Python operator, say)
    reports why instead, with its own count (``own_count``), which is then all there is. Where a graph was
    exported, its FLOPs and activations are counted outside this process; the worker's own count of them would
    be a claim nobody reads, so it is made only if the parent asks (``claim``).
    """
    as_built = count_params(module)  # before any forward: a model may fuse or drop layers on its first call
    claim: dict[str, Any] = {
        "claimed": {"params": as_built, "flops": None, "activations": None, "num_conv": None, "input_size": list(size),
                    "peak_memory_mb": None},
        "layer_kinds": layer_kinds(module),
        "graph": None, "zeros_graph": None, "graph_error": None, "graph_warnings": [],
    }
    try:
        # The zeros first: that trace is the model's first call, which may fuse or initialise something; the trace on
        # torch.rand, fvcore's input, is then of the model as it runs. Where the two differ, the zeros are traced
        # again, and the difference stands only if it was not the first call's.
        first = export_trace(module, official_input(size, device), workdir / ZEROS_GRAPH_FILE)
        on_rand = export_trace(module, torch.rand(1, 3, *size, device=device), workdir / GRAPH_FILE)
        on_zeros = first if first.text == on_rand.text else \
            export_trace(module, official_input(size, device), workdir / ZEROS_GRAPH_FILE)
    except Exception as exc:  # whatever the team's model does under the tracer
        claim["graph_error"] = f"its graph could not be exported: {first_line(exc)}"
        claim["claimed"] = {**own_count(module, size, device), "params": as_built}
        return claim
    claim["claimed"]["peak_memory_mb"] = peak_memory_mb(module, size, device)  # warm, as the official one
    claim["graph"], claim["graph_warnings"] = GRAPH_FILE, sorted({*on_rand.warnings, *on_zeros.warnings})
    if on_zeros.text != on_rand.text:
        claim["zeros_graph"] = ZEROS_GRAPH_FILE
    else:
        (workdir / ZEROS_GRAPH_FILE).unlink()
    return claim


def count_graph(args: dict[str, Any]) -> dict[str, Any]:
    """The fresh worker's ``count`` request: count the graph, then run it on the LR images it was given.

    ``args``: ``graph`` (path) and ``zeros_graph`` (path or None: the trace on the zeros, where it differs),
    ``device``, ``size``, ``layer_kinds``, ``inputs`` (LR .npy paths), the graph each is run on (``on``: "rand"
    or "zeros") and the matching ``outputs`` (.npy paths to write the uint8 SR to), ``data_range``,
    ``pad_to_multiple``, ``scale``.
    """
    from ntire_bench.metrics.quality import quantize

    device = torch.device(args["device"])
    try:
        modules = {"rand": load_exported(args["graph"], device)}
        modules["zeros"] = load_exported(args["zeros_graph"], device) if args.get("zeros_graph") else modules["rand"]
        counts = count_exported(modules["rand"], tuple(args["size"]), device, args["layer_kinds"],
                                on_zeros=modules["zeros"] if args.get("zeros_graph") else None)
    except Exception as exc:  # a graph this process cannot load or step through: the parent falls back, flagged
        return {"result": {"graph_failure": first_line(exc)}}
    scale, data_range = int(args["scale"]), float(args["data_range"])
    failures: list[str | None] = []
    on = args.get("on") or ["rand"] * len(args["inputs"])
    for lr_path, sr_path, graph in zip(args["inputs"], args["outputs"], on):
        lr = np.load(lr_path, allow_pickle=False)
        x255 = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float().to(device)
        try:
            (out,) = run_exported(modules[graph], [model_input(x255, data_range, int(args["pad_to_multiple"]))])
        except Exception as exc:  # a graph that holds the traced input's size cannot run here
            failures.append(first_line(exc))
            continue
        height, width = lr.shape[:2]
        if out.dim() != 4 or out.shape[-2] < height * scale or out.shape[-1] < width * scale:
            failures.append(f"its output is {tuple(out.shape)} for a {height}x{width} input")
            continue
        sr = quantize(out[0, :, : height * scale, : width * scale], data_range)
        np.save(sr_path, sr.cpu().numpy(), allow_pickle=False)
        failures.append(None)
    return {"result": {**counts, "run_failures": failures}}
