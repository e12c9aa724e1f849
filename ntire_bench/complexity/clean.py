"""Counting a submission's exported graph in a process that never ran the submission's code.

The worker that loads a team's model saves a TorchScript trace of it (``export_trace``) on each official
input: ``torch.rand`` (fvcore's) and zeros (the hooked counters'); the second is kept only where it recorded
another computation (a model that routes by its input's values). A fresh
worker, which is sent nothing but that file, counts it here (``count_exported``) by every year's
rules (rules.py), and works out the audited figures the official rules are blind to:

- FLOPs of operators fvcore has no handle for, measured with ``torch.utils.flop_counter``
  (which counts 2 per multiply-add; halved here);
- parameters the forward uses as weights without their being parameters: floating-point buffers
  (normalisation statistics excepted) and tensors baked into the graph;
- output elements of convolutions that are not in a Conv2d layer (functional calls).

The same fresh process runs the graph on real LR images (``run_exported``), so that the parent can
compare it with what the worker delivered: what was counted must be what runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch

from ntire_bench.complexity.graph import GraphError, GraphRun, run_traced, shapes_depend_on_values
from ntire_bench.complexity.rules import (FVCORE, NORM_STATISTICS, NTIRE2023, all_convolution_outputs,
                                          conv_activations, flops_2023, fvcore_flops, fvcore_tables, parameter_count)

# The tracer's warnings that mean the graph holds one branch of a data-dependent decision.
DATA_DEPENDENT_MARKERS = ("Converting a tensor to a Python", "Python value", "might cause the trace to be incorrect")


class _InferenceContext:
    """What a custom autograd function's ``forward`` may call on its ``ctx`` (nothing is kept: no backward)."""

    needs_input_grad: tuple[bool, ...] = ()
    materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        pass

    def mark_dirty(self, *tensors: Any) -> None:
        pass

    def mark_non_differentiable(self, *tensors: Any) -> None:
        pass

    def set_materialize_grads(self, value: bool) -> None:
        pass


@contextlib.contextmanager
def inline_autograd_functions() -> Iterator[None]:
    """Run custom ``torch.autograd.Function``s as their ``forward`` bodies, so that a trace records the operators
    they run instead of an opaque Python call TorchScript cannot save (``prim::PythonOp``). Only for the trace:
    the graph's outputs are then checked against the model's own (runner/complexity_check.py)."""
    from torch.autograd.function import _SingleLevelFunction

    original = torch.autograd.Function.__dict__["apply"]

    def apply(cls: type, *args: Any, **kwargs: Any) -> Any:
        if cls.setup_context is not _SingleLevelFunction.setup_context:  # the forward takes no ctx
            return cls.forward(*args, **kwargs)
        return cls.forward(_InferenceContext(), *args, **kwargs)

    torch.autograd.Function.apply = classmethod(apply)  # type: ignore[assignment, method-assign]
    try:
        yield
    finally:
        torch.autograd.Function.apply = original  # type: ignore[method-assign]


@dataclass(frozen=True)
class ExportedTrace:
    """What tracing found: the tracer's warnings about data-dependent control flow, and the graph's text (module
    names unmangled), equal for two traces exactly when they recorded the same computation."""

    warnings: list[str]
    text: str


def export_trace(module: torch.nn.Module, x: torch.Tensor, path: str | os.PathLike) -> ExportedTrace:
    """Trace ``module`` on ``x`` and save it to ``path``. A trace holds the path the model took on ``x``: the
    warnings say when that path depended on values (the saved graph is then valid for this input only).
    Raises what tracing or saving raises."""
    with warnings.catch_warnings(record=True) as caught, torch.no_grad(), inline_autograd_functions():
        warnings.simplefilter("always", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, x, check_trace=False)
        torch.jit.save(traced, str(path))
    found = [" ".join(str(w.message).split()) for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    return ExportedTrace(sorted({w for w in found if any(marker in w for marker in DATA_DEPENDENT_MARKERS)}),
                         re.sub(r"___torch_mangle_\d+\.", "", str(traced.inlined_graph)))


def load_exported(path: str | os.PathLike, device: torch.device) -> Any:
    """The saved trace, on ``device``; GraphError when this process cannot load it (e.g. an extension op)."""
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is what fvcore, the official counter, reads
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # a custom op or class missing here, a corrupt archive: never the harness's fault
        raise GraphError(f"the exported graph cannot be loaded without the submission's code "
                         f"({' '.join(str(exc).split())[:200]})") from None


# Composite operators that reach the multiply-add kernels torch's flop counter has formulas for.
MAC_COMPOSITES = frozenset({
    "aten::scaled_dot_product_attention", "aten::matmul", "aten::linear", "aten::einsum", "aten::bilinear",
    "aten::tensordot", "aten::chain_matmul", "aten::addbmm", "aten::conv1d", "aten::conv2d", "aten::conv3d",
    "aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d", "aten::_convolution_mode",
    "aten::_convolution", "aten::convolution",
})


def _unsupported_flops() -> tuple[Any, Counter]:
    """An ``on_node`` hook that measures, with torch's flop counter, the operators fvcore neither counts nor ignores
    and that reach a multiply-add kernel (entering the counter costs seconds the first time: only those do)."""
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    handles, ignored = fvcore_tables()
    with_formula = MAC_COMPOSITES | {f"aten::{str(op).removeprefix('aten.')}" for op in flop_registry}
    measured: Counter[str] = Counter()

    def on_node(node: Any, run: Any) -> list[Any]:
        kind = node.kind()
        if kind in handles or kind in ignored or kind not in with_formula:
            return run()
        with FlopCounterMode(display=False) as counter:
            outputs = run()
        macs = counter.get_total_flops() // 2  # torch counts a multiply-add as 2
        if macs:
            measured[kind] += int(macs)
        return outputs

    return on_node, measured


def _weights_outside_parameters(module: Any, run: GraphRun) -> tuple[int, list[str]]:
    """Floating-point values the forward reads as weights without their being parameters: buffers
    (normalisation statistics excepted) and tensors baked into the graph; (elements, names)."""
    seen = {p.untyped_storage().data_ptr() for p in module.parameters()}
    elements, names = 0, []
    for name, buffer in module.named_buffers():
        key = buffer.untyped_storage().data_ptr()
        if buffer.is_floating_point() and name.rsplit(".", 1)[-1] not in NORM_STATISTICS and key not in seen:
            seen.add(key)
            elements += int(buffer.numel())
            names.append(name)
    baked = [t for t in run.constants if t.is_floating_point() and t.numel() > 1
             and t.untyped_storage().data_ptr() not in seen]
    for tensor in baked:
        seen.add(tensor.untyped_storage().data_ptr())
        elements += int(tensor.numel())
    if baked:
        names.append(f"{len(baked)} tensor(s) baked into the graph")
    return elements, names


def count_exported(module: Any, input_size: tuple[int, int], device: torch.device,
                   declared: Mapping[str, str], on_zeros: Any = None) -> dict[str, Any]:
    """Every count of a loaded trace at 1x3xHxW, each on its official input: fvcore's on ``torch.rand``, the
    hooked counters' (activations, Conv2d calls, 2023 FLOPs) on the zeros ``torch.FloatTensor`` holds. A model
    whose path depends on its input's values was traced on each: ``on_zeros`` is its trace on the zeros.

    Returns ``flops`` (by convention), ``unsupported_ops`` (fvcore's), ``activations``, ``num_conv``, ``params``,
    ``input_dependent`` (figures that come out otherwise on the other input, with their value there), and the
    audited figures: ``skipped_flops`` (operator -> multiply-adds fvcore skips), ``weight_elements`` and
    ``weight_buffers`` (weights outside the parameters), ``all_conv_activations`` (functional convolutions
    included), and ``uninitialised_output`` (the output depends on memory nothing in the graph wrote).
    """
    on_node, measured = _unsupported_flops()
    generator = torch.Generator(device="cpu").manual_seed(0)
    run = run_traced(module, [torch.rand(1, 3, *input_size, generator=generator).to(device)], on_node=on_node)
    # fvcore reads the types the run gave the graph's values: before another run on the same graph gives them others
    fvcore_total, unsupported = fvcore_flops(run)
    # The same straight-line graph on zeros has the same shapes, so the same counts, unless an operator's output
    # shape depends on values: only then (or on a trace of its own) is it run on the zeros as well.
    hooked = (run_traced(module if on_zeros is None else on_zeros, [torch.zeros(1, 3, *input_size, device=device)])
              if on_zeros is not None or shapes_depend_on_values(run) else run)
    activations, num_conv = conv_activations(hooked, declared)
    on_rand = conv_activations(run, declared)
    weight_elements, weight_buffers = _weights_outside_parameters(module, run)
    return {
        "flops": {FVCORE: fvcore_total, NTIRE2023: flops_2023(hooked, declared)},
        "unsupported_ops": unsupported, "activations": activations, "num_conv": num_conv,
        "input_dependent": {name: other for name, other, official in
                            (("activations", on_rand[0], activations), ("num_conv", on_rand[1], num_conv))
                            if other != official},
        "params": parameter_count(module), "weight_elements": weight_elements, "weight_buffers": weight_buffers,
        "skipped_flops": dict(sorted(measured.items())), "all_conv_activations": all_convolution_outputs(hooked)[0],
        "uninitialised_output": run.uninitialised_output,
    }


def run_exported(module: Any, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The trace's outputs for ``inputs`` (each 1x3xHxW, as the model is fed), by the plain TorchScript interpreter."""
    outputs = []
    with torch.no_grad(), torch.jit.optimized_execution(False):  # no profiling passes: one plain run each
        for x in inputs:
            out = module(x)
            if not isinstance(out, torch.Tensor):
                raise GraphError(f"the exported graph returns {type(out).__name__}, not a tensor")
            outputs.append(out)
    return outputs
