"""Each year's official counting rules, applied to a graph run (graph.py) instead of a live model.

- ``fvcore`` (2024 and later): ``FlopCountAnalysis`` sums fvcore's own per-operator handles over
  the nodes of a trace and reports the operators it has no handle for; the same handles run here
  over the same nodes, so the totals are equal.
- ``ntire2023-hooks`` (2022, 2023: ``utils/model_summary.get_model_flops``): forward hooks on a few
  layer types, one count per call of a hooked module (see ``flops_2023``).
- Activations and Conv2d calls (every year, ``get_model_activation``): the output size of every call
  of an ``nn.Conv2d``/``nn.ConvTranspose2d``, and the number of those calls.
- Params (every year): ``sum(p.numel() for p in model.parameters())``.

The official hooks match layers with ``isinstance``; a TorchScript module only keeps its class
name, so a subclass of a hooked layer is recognised from the kinds the worker declares for it
(``declared``), which can only add modules the class names do not already place.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections import Counter
from typing import Any, Mapping

import torch

from ntire_bench.complexity.graph import GraphRun, ModuleCall

FVCORE = "fvcore"
NTIRE2023 = "ntire2023-hooks"
CONVENTIONS = (FVCORE, NTIRE2023)

CONV_KINDS = ("Conv2d", "ConvTranspose2d")
ACTIVATION_KINDS = ("ReLU", "PReLU", "ELU", "LeakyReLU", "ReLU6")
HOOKED_KINDS = (*CONV_KINDS, *ACTIVATION_KINDS, "Linear", "BatchNorm2d")
# The statistics a normalisation layer keeps: buffers that are not weights.
NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def fvcore_tables() -> tuple[dict[str, Any], set[str]]:
    """fvcore's default handles and the operators it ignores (module-level tables of its analysis classes)."""
    with warnings.catch_warnings():  # fvcore's import warns on new torch
        warnings.simplefilter("ignore")
        flop_count = importlib.import_module("fvcore.nn.flop_count")
        jit_analysis = importlib.import_module("fvcore.nn.jit_analysis")
    return dict(flop_count._DEFAULT_SUPPORTED_OPS), set(jit_analysis._IGNORED_OPS)


def fvcore_flops(run: GraphRun) -> tuple[int, dict[str, int]]:
    """fvcore's total over the run's nodes, and the operators it skipped (name -> calls), as it reports them."""
    handles, ignored = fvcore_tables()
    total: float = 0
    skipped: Counter[str] = Counter()
    for node in run.nodes:
        kind = node.kind()
        handle = handles.get(kind)
        if handle is None:
            if kind not in ignored:
                skipped[kind] += 1
            continue
        counted = handle(list(node.inputs()), list(node.outputs()))
        total += sum(counted.values()) if isinstance(counted, Mapping) else counted
    return int(total), dict(sorted(skipped.items()))


def call_kind(call: ModuleCall, declared: Mapping[str, str]) -> str | None:
    """The hooked layer type a call belongs to: its class name, else what the worker declared for a subclass."""
    if call.kind in HOOKED_KINDS:
        return call.kind
    kind = declared.get(call.name)
    return kind if kind in HOOKED_KINDS else None


def conv_activations(run: GraphRun, declared: Mapping[str, str]) -> tuple[int, int]:
    """(activations, num_conv): output elements and calls of every Conv2d/ConvTranspose2d call."""
    calls = [c for c in run.calls if call_kind(c, declared) in CONV_KINDS]
    return sum(int(c.output.numel()) for c in calls), len(calls)


def all_convolution_outputs(run: GraphRun) -> tuple[int, int]:
    """(output elements, calls) of every convolution operator, in a layer or not: what activations would be
    if functional convolutions counted too."""
    convs = [n for n in run.nodes if n.kind() == "aten::_convolution"]
    return sum(math.prod(n.output().type().sizes()) for n in convs), len(convs)


def _spatial(output: Any) -> int:
    return math.prod(int(d) for d in output.shape[2:])


def flops_2023_of_call(call: ModuleCall, kind: str) -> int:
    """One hooked layer call's FLOPs by the 2022/2023 rules (see ``flops_2023``)."""
    output = call.output
    if kind in CONV_KINDS:
        # kh * kw * in_channels * (out_channels // groups), which is the weight's size for either kind
        return int(call.module.weight.numel()) * int(output.shape[0]) * _spatial(output)
    if kind in ACTIVATION_KINDS:
        return int(output.numel())
    if kind == "Linear":
        x = call.inputs[0]
        if x.dim() == 1:
            return int(x.shape[0]) * int(output.shape[0])
        return int(x.shape[0]) * int(x.shape[1]) * int(output.shape[1])  # dims 0 and 1 whatever the rank, as theirs
    # BatchNorm2d: N * features * H * W, twice when affine
    affine = isinstance(getattr(call.module, "weight", None), torch.Tensor)
    features = int((call.module.weight if affine else call.module.running_mean).numel())
    return int(output.shape[0]) * features * _spatial(output) * (2 if affine else 1)


def flops_2023(run: GraphRun, declared: Mapping[str, str]) -> int:
    """The NTIRE 2022/2023 counter: per call of a hooked layer, conv ``kh*kw*in*(out//groups)*N*H*W`` (no bias; a
    transposed conv on its output size), activation layers their output size, Linear its dims-0-and-1 rule,
    BatchNorm2d ``N*C*H*W`` (twice when affine); every other operator counts 0."""
    return sum(flops_2023_of_call(c, kind) for c in run.calls if (kind := call_kind(c, declared)) is not None)


def parameter_count(module: Any) -> int:
    """The official rule: the elements of every parameter (shared ones once)."""
    return sum(int(p.numel()) for p in module.parameters())
