"""Running a saved TorchScript trace node by node, so that it can be counted outside the process that made it.

A trace saved and loaded again keeps its operators but not the shapes the tracer saw. ``run_traced``
executes the graph (and the graph of every submodule it calls) one node at a time on a real input,
gives every tensor value its complete type again, and records each submodule call with its module,
inputs and output. The counters then read exactly the nodes fvcore reads in a trace made on the
spot, and the module calls the official hooks see.

Values made by ``aten::empty``-like operators are tracked as uninitialised until an operator writes
into them: an output that still depends on one was written by something the tracer could not see
(an extension operator), so the graph does not compute what the model computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import torch

# Operators whose result holds whatever memory was there: a write must follow, or the value is garbage.
UNINITIALISED = {"aten::empty", "aten::empty_like", "aten::new_empty", "aten::empty_strided"}


class GraphError(ValueError):
    """The graph holds something this interpreter cannot run; the message names the operator."""


@dataclass
class ModuleCall:
    """One call of a submodule: its qualified name, TorchScript class name, the module, and the shapes of its inputs
    and output (meta tensors)."""

    name: str
    kind: str
    module: Any
    inputs: list[Any]
    output: Any


@dataclass
class GraphRun:
    """A graph executed on one input: every node run (types complete), every submodule call, the outputs."""

    nodes: list[Any] = field(default_factory=list)
    calls: list[ModuleCall] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    constants: list[torch.Tensor] = field(default_factory=list)  # tensors baked into the graph
    uninitialised_output: bool = False


def _shapes(value: Any) -> Any:
    """``value`` with every tensor in it replaced by a meta tensor of its shape and dtype (no storage)."""
    if isinstance(value, torch.Tensor):
        try:
            return torch.empty(value.shape, dtype=value.dtype, device="meta")
        except (RuntimeError, TypeError):  # a dtype or subclass meta tensors cannot hold: kept as it is
            return value
    if type(value) in (list, tuple):
        return type(value)(_shapes(v) for v in value)
    return value


def _storage(value: Any) -> int | None:
    return value.untyped_storage().data_ptr() if isinstance(value, torch.Tensor) else None


class _Interpreter:
    def __init__(self, root: Any, on_node: Callable[[Any, Callable[[], list[Any]]], list[Any]] | None) -> None:
        self.names = {id(module): name for name, module in root.named_modules()}
        self.run = GraphRun()
        self.tainted: set[int] = set()
        self.on_node = on_node

    def call(self, module: Any, graph: Any, arguments: Sequence[Any]) -> list[Any]:
        env: dict[Any, Any] = {}
        for value, argument in zip(graph.inputs(), [module, *arguments]):
            env[value] = argument
            _annotate(value, argument)
        for node in graph.nodes():
            inputs = [env[value] for value in node.inputs()]
            outputs = self.node(node, inputs)
            for value, output in zip(node.outputs(), outputs):
                env[value] = output
                _annotate(value, output)
        return [env[value] for value in graph.outputs()]

    def node(self, node: Any, inputs: list[Any]) -> list[Any]:
        kind = node.kind()
        if kind == "prim::Constant":
            value = node.output().toIValue() if node.outputsSize() else None
            if isinstance(value, torch.Tensor):
                self.run.constants.append(value)
            return [value] if node.outputsSize() else []
        if kind == "prim::GetAttr":
            return [getattr(inputs[0], node.s("name"))]
        if kind == "prim::CallMethod":
            return self.call_method(node, inputs)
        if kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            return [list(inputs) if kind == "prim::ListConstruct" else tuple(inputs)]
        if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            return list(inputs[0])
        if kind == "prim::TupleIndex":
            return [inputs[0][inputs[1]]]
        if kind == "prim::NumToTensor":
            return [torch.scalar_tensor(inputs[0])]
        if kind.startswith("prim::"):
            raise GraphError(f"the graph holds {kind}, which a trace of a model should not contain")
        self.run.nodes.append(node)
        outputs = self.on_node(node, lambda: _call_operator(node, inputs)) if self.on_node \
            else _call_operator(node, inputs)
        self.track(node, kind, inputs, outputs)
        return outputs

    def call_method(self, node: Any, inputs: list[Any]) -> list[Any]:
        module, arguments = inputs[0], inputs[1:]
        graph = module._c._get_method(node.s("name")).graph
        outputs = self.call(module, graph, arguments)
        # the counters read only the shapes of a call's inputs and output: kept as meta tensors, they hold no memory
        # (kept whole, they held every layer's output to the end of the run: hundreds of MB faulted in at 256x256)
        self.run.calls.append(ModuleCall(self.names.get(id(module), "?"), getattr(module, "original_name", "?"),
                                         module, _shapes(arguments),
                                         _shapes(outputs[0] if len(outputs) == 1 else tuple(outputs))))
        return outputs

    def track(self, node: Any, kind: str, inputs: list[Any], outputs: list[Any]) -> None:
        """Follow uninitialised memory: made by an empty-like operator, cleared by an operator that writes."""
        if kind in UNINITIALISED:
            self.tainted.update(s for s in map(_storage, outputs) if s is not None)
            return
        schema = node.schema()
        if schema == "(no schema)":
            return
        writes = _operator(schema)[3]
        written = {_storage(v) for w, v in zip(writes, inputs) if w}
        read = {_storage(v) for v in _tensors(inputs)} - written
        dirty = bool(read & self.tainted)
        for storage in written | {_storage(v) for v in _tensors(outputs)}:
            if storage is None:
                continue
            if dirty:
                self.tainted.add(storage)
            else:
                self.tainted.discard(storage)


def _tensors(values: Sequence[Any]) -> list[torch.Tensor]:
    found = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _annotate(value: Any, runtime: Any) -> None:
    if isinstance(runtime, torch.Tensor):
        value.setType(torch._C.TensorType.create_from_tensor(runtime))


@lru_cache(maxsize=None)
def _operator(schema_text: str) -> tuple[Any, tuple[bool, ...], tuple[str, ...], tuple[bool, ...]]:
    """The overload a schema names, which of its arguments are keyword-only, their names, which are written."""
    schema = torch._C.parse_schema(schema_text)
    namespace, name = schema.name.split("::")
    try:
        operator = getattr(getattr(getattr(torch.ops, namespace), name), schema.overload_name or "default")
    except (AttributeError, RuntimeError) as exc:
        raise GraphError(f"operator {schema.name} is not available in this process ({exc})") from None
    arguments = schema.arguments
    return (operator, tuple(a.kwarg_only for a in arguments), tuple(a.name for a in arguments),
            tuple(a.alias_info is not None and a.alias_info.is_write for a in arguments))


def _call_operator(node: Any, inputs: list[Any]) -> list[Any]:
    """Call the operator a node names, through its exact overload, with the node's inputs."""
    schema_text = node.schema()
    if schema_text == "(no schema)":
        raise GraphError(f"operator {node.kind()} has no schema")
    operator, keyword_only, names, _ = _operator(schema_text)
    positional = [v for k, v in zip(keyword_only, inputs) if not k]
    keywords = {n: v for k, n, v in zip(keyword_only, names, inputs) if k}
    result = operator(*positional, **keywords)
    if node.outputsSize() == 1:
        return [result]
    return list(result) if isinstance(result, (list, tuple)) else [result]


# Operator tags that say an output's shape (or a value read back as a number) depends on the input's values.
_VALUE_DEPENDENT_TAGS = (torch.Tag.dynamic_output_shape, torch.Tag.data_dependent_output)


# Operators that turn a tensor into a Python number inside a trace (a size, a slice bound): their tags say nothing.
_TO_SCALAR = {"aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit", "aten::IntImplicit",
              "aten::FloatImplicit", "aten::item", "aten::tolist", "aten::_local_scalar_dense"}
# What a number read back only from sizes and constants may pass through: it is then the same on every input.
_SHAPE_ARITHMETIC = {"aten::size", "prim::NumToTensor", "prim::Constant", "prim::ListConstruct", "prim::TupleConstruct",
                     "prim::ListUnpack", "prim::TupleUnpack", "aten::mul", "aten::add", "aten::sub", "aten::div",
                     "aten::floor_divide", "aten::remainder", "aten::neg", "aten::floor", "aten::ceil", *_TO_SCALAR}


def _from_sizes(value: Any, seen: set[int]) -> bool:
    """Whether ``value`` is computed from sizes and constants only (never from a tensor's values)."""
    node = value.node()
    if id(node) in seen:
        return True
    seen.add(id(node))
    if node.kind() == "aten::size" or node.kind() == "prim::Constant":
        return True
    if node.kind() not in _SHAPE_ARITHMETIC:  # a graph input, a tensor operator, anything else: values may reach it
        return False
    return all(_from_sizes(v, seen) for v in node.inputs())


def shapes_depend_on_values(run: GraphRun) -> bool:
    """Whether a run's shapes could come out otherwise on another input of the same size: a trace is straight-line
    code, so only an operator whose output shape depends on values (``nonzero``, mask indexing, ``unique``), a
    number read back from a tensor's values (``int(x.mean() * k)`` as a slice bound), or an operator from outside
    aten (its tags unknown) can make them differ."""
    for node in run.nodes:
        kind, schema = node.kind(), node.schema()
        if kind in _TO_SCALAR:
            if not all(_from_sizes(v, set()) for v in node.inputs()):
                return True
            continue
        if schema == "(no schema)" or not kind.startswith("aten::"):
            return True
        if any(tag in _VALUE_DEPENDENT_TAGS for tag in _operator(schema)[0].tags):
            return True
    return False


def run_traced(module: Any, inputs: Sequence[torch.Tensor],
               on_node: Callable[[Any, Callable[[], list[Any]]], list[Any]] | None = None) -> GraphRun:
    """Execute a loaded traced ``module`` node by node on ``inputs`` (no autograd).

    ``on_node(node, run)`` may wrap each operator's execution (``run()`` executes it and returns
    its outputs), e.g. to measure it. Raises GraphError for a node that cannot be run here.
    """
    interpreter = _Interpreter(module, on_node)
    with torch.no_grad():
        outputs = interpreter.call(module, module._c._get_method("forward").graph, list(inputs))
    interpreter.run.outputs = outputs
    interpreter.run.uninitialised_output = any(_storage(t) in interpreter.tainted for t in _tensors(outputs))
    return interpreter.run
