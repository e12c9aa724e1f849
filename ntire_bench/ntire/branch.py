"""Reading one ``select_model()`` branch of an NTIRE checkout without running it.

``static_eval.static`` evaluates what can be known from the source alone (literals, names bound earlier, f-strings
with model_id, ``os.path.join``); ``BranchReader`` walks a branch statement by statement and records
the constructor, the checkpoint and how it is loaded, the deploy steps, and every statement it does
not recognise (which makes the branch an ``official-branch`` build).
"""

from __future__ import annotations

import ast
import dataclasses
import posixpath
from dataclasses import dataclass
from typing import Any, Iterable

from torch import nn
from ntire_bench.ntire.static_eval import MODEL_ID_KEY, STATIC_ERRORS, dotted_name, import_bindings, is_inert, static

PLACEMENT = {"eval", "to", "cuda", "cpu"}  # calls that only place the model: the runtime does its own


@dataclass(frozen=True)
class WeightsLoad:
    """A ``torch.load(path)`` result, possibly indexed by a key (or a probed list of keys)."""

    path: str
    key: str | list[str] | None = None
    weights_only: Any = None


@dataclass
class Frame:
    """What select_model() shares with every branch: names, and the statements around the chain."""

    file: str
    id_names: set[str]
    returned: tuple[str, str, str, str]  # the model, name, data_range and tile variables
    imports: dict[str, tuple[str, str | None]]
    around: list[ast.stmt]  # statements before and after the if/elif chain


class BranchReader:
    """Reads one branch statement by statement, recording what it declares and what it cannot read."""

    def __init__(self, frame: Frame, model_id: int) -> None:
        self.model = frame.returned[0]
        self.env: dict[str, Any] = {name: model_id for name in frame.id_names} | {MODEL_ID_KEY: model_id}
        self.imports = dict(frame.imports)
        self.branch_imports: list[tuple[str, str]] = []
        self.loads: dict[str, WeightsLoad] = {}
        self.probes: dict[str, list[str]] = {}
        self.first_load: WeightsLoad | None = None
        self.ctor: tuple[str, str] | None = None
        self.args: list[Any] = []
        self.kwargs: dict[str, Any] = {}
        self.weights: WeightsLoad | None = None
        self.strict, self.loader, self.deploy = True, "load_state_dict", []
        self.pickled_model_line: int | None = None
        self.cuda_lines: list[int] = []
        self.unrecognised: list[ast.stmt] = []

    def read(self, statements: Iterable[ast.stmt]) -> None:
        for statement in statements:
            if not self.statement(statement):
                self.unrecognised.append(statement)

    def statement(self, node: ast.stmt) -> bool:
        if is_inert(node) or isinstance(node, ast.Return):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = import_bindings(node)
            self.imports.update(bound or {})
            self.branch_imports.extend(v for v in (bound or {}).values() if v[1] is not None)
            return bound is not None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            return self.assign(node.targets[0], node.value, node)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            return self.call(node.value, node)
        if isinstance(node, ast.If):
            return self.probe_statement(node)
        if isinstance(node, ast.For) and not node.orelse:
            return self.loop(node)
        return False

    def assign(self, target: ast.expr, value: ast.expr, node: ast.stmt) -> bool:
        if isinstance(target, ast.Tuple):
            if not (isinstance(value, ast.Tuple) and len(value.elts) == len(target.elts)):
                return False
            return all([self.assign(t, v, node) for t, v in zip(target.elts, value.elts, strict=True)])
        if not isinstance(target, ast.Name):
            return False
        if target.id == self.model:
            return self.model_assignment(value, node)
        if (load := self.load_ref(value)) is not None:
            self.loads[target.id] = load
            return True
        if isinstance(value, ast.Call) and dotted_name(value.func) == "importlib.import_module" \
                and len(value.args) == 1:
            try:
                self.imports[target.id] = (str(static(value.args[0], self.env)), None)
                return True
            except STATIC_ERRORS:
                return False
        if (keys := self.probe_value(value)) is not None:
            self.probes[target.id] = keys
            return True
        try:
            self.env[target.id] = static(value, self.env)
            return True
        except STATIC_ERRORS:
            self.env.pop(target.id, None)
            return False

    def placed(self, node: ast.expr, line: int) -> ast.expr:
        """Peel ``.eval()``, ``.to(...)``, ``.cuda()`` and ``.cpu()`` calls, noting moves to CUDA."""
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PLACEMENT:
            targets = [a for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("cuda")]
            if node.func.attr == "cuda" or targets:
                self.cuda_lines.append(line)
            node = node.func.value
        return node

    def model_assignment(self, value: ast.expr, node: ast.stmt) -> bool:
        inner = self.placed(value, node.lineno)
        if isinstance(inner, ast.Name) and inner.id == self.model:
            return True
        if (load := self.load_ref(inner)) is not None:
            self.weights, self.pickled_model_line = load, node.lineno
            return True
        if not isinstance(inner, ast.Call) or self.ctor is not None:
            return False
        self.ctor = self.resolve(inner.func)
        if self.ctor is None:
            return False
        try:
            for arg in inner.args:
                if isinstance(arg, ast.Starred):
                    self.args.extend(static(arg.value, self.env))
                else:
                    self.args.append(static(arg, self.env))
            for keyword in inner.keywords:
                value = static(keyword.value, self.env)
                self.kwargs.update(value if keyword.arg is None else {keyword.arg: value})
        except STATIC_ERRORS:
            self.args, self.kwargs = [], {}  # a partial argument list would mislead the reviewer
            return False
        return True

    def resolve(self, func: ast.expr) -> tuple[str, str] | None:
        """The (module, attribute) a constructor expression names, through imports and getattr."""
        if isinstance(func, ast.Call) and dotted_name(func.func) == "getattr" and len(func.args) == 2:
            base = dotted_name(func.args[0])
            try:
                attribute = static(func.args[1], self.env)
            except STATIC_ERRORS:
                return None
            if not (base and isinstance(attribute, str)):
                return None
            return self.resolve(ast.Attribute(ast.Name(base), attribute))
        dotted = dotted_name(func)
        head, *rest = dotted.split(".") if dotted else [""]
        if head not in self.imports:
            return None
        module, attribute = self.imports[head]
        parts = [module, *([attribute] if attribute else []), *rest]
        return (".".join(parts[:-1]), parts[-1]) if len(parts) > 1 else None

    def load_ref(self, node: ast.expr) -> WeightsLoad | None:
        if isinstance(node, ast.Call) and dotted_name(node.func) == "torch.load":
            keywords = {k.arg: k.value for k in node.keywords}
            try:
                path = static(node.args[0] if node.args else keywords.get("f"), self.env)
                weights_only = static(keywords["weights_only"], self.env) if "weights_only" in keywords else None
            except STATIC_ERRORS:
                return None
            if not isinstance(path, str):
                return None
            load = WeightsLoad(_normalise(path), None, weights_only)
            self.first_load = self.first_load or load
            return load
        if isinstance(node, ast.Name):
            return self.loads.get(node.id)
        if isinstance(node, ast.Subscript) and (base := self.load_ref(node.value)) is not None and base.key is None:
            if isinstance(node.slice, ast.Name) and node.slice.id in self.probes:
                return dataclasses.replace(base, key=list(self.probes[node.slice.id]))
            try:
                key = static(node.slice, self.env)
            except STATIC_ERRORS:
                return None
            return dataclasses.replace(base, key=key) if isinstance(key, str) else None
        return None

    def probed_key(self, test: ast.expr) -> str | None:
        """``'params_ema' in loadnet`` (loadnet from torch.load) gives 'params_ema'."""
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.In) \
                and isinstance(test.comparators[0], ast.Name) and test.comparators[0].id in self.loads \
                and isinstance(test.left, ast.Constant) and isinstance(test.left.value, str):
            return test.left.value
        return None

    def probe_value(self, node: ast.expr) -> list[str] | None:
        keys = []
        while isinstance(node, ast.IfExp):
            key = self.probed_key(node.test)
            if key is None or not (isinstance(node.body, ast.Constant) and node.body.value == key):
                return None
            keys.append(key)
            node = node.orelse
        if keys and isinstance(node, ast.Constant) and isinstance(node.value, str):
            return list(dict.fromkeys([*keys, node.value]))
        return None

    def probe_statement(self, node: ast.If) -> bool:
        """``if 'a' in sd: k = 'a' [elif ...] else: k = 'b'`` binds k to the probe ['a', ..., 'b']."""
        keys, target = [], None
        while True:
            key = self.probed_key(node.test)
            assigned = _string_assignment(node.body)
            if key is None or assigned is None or assigned[1] != key or target not in (None, assigned[0]):
                return False
            target = assigned[0]
            keys.append(key)
            if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):
                node = node.orelse[0]
                continue
            fallback = _string_assignment(node.orelse)
            if fallback is None or fallback[0] != target:
                return False
            self.probes[target] = list(dict.fromkeys([*keys, fallback[1]]))
            return True

    def call(self, call: ast.Call, node: ast.stmt) -> bool:
        if dotted_name(call.func) == "print":
            return True
        if not isinstance(call.func, ast.Attribute):
            return False
        receiver, method = self.placed(call.func.value, node.lineno), call.func.attr
        if not (isinstance(receiver, ast.Name) and receiver.id == self.model):
            return False
        if method in PLACEMENT:
            self.placed(call, node.lineno)
            return True
        if method == "load_state_dict":
            return self.load_state_dict(call)
        if method.startswith("load") and len(call.args) == 1 and not call.keywords and self.weights is None:
            try:
                path = static(call.args[0], self.env)
            except STATIC_ERRORS:
                return False
            self.weights, self.loader = WeightsLoad(_normalise(str(path))), f"method:{method}"
            return True
        if not call.args and not call.keywords and self.weights is not None and not hasattr(nn.Module, method) \
                and not method.startswith("load"):
            self.deploy.append(method)
            return True
        return False

    def load_state_dict(self, call: ast.Call) -> bool:
        keywords = {k.arg: k.value for k in call.keywords}
        source = call.args[0] if call.args else keywords.get("state_dict")
        strict_node = call.args[1] if len(call.args) > 1 else keywords.get("strict")
        load = self.load_ref(source) if source is not None else None
        try:
            strict = True if strict_node is None else static(strict_node, self.env)
        except STATIC_ERRORS:
            return False
        if load is None or not isinstance(strict, bool) or self.weights is not None:
            return False
        self.weights, self.strict = load, strict
        return True

    def loop(self, node: ast.For) -> bool:
        iterated = dotted_name(node.iter.func) if isinstance(node.iter, ast.Call) else None
        if iterated in (f"{self.model}.named_parameters", f"{self.model}.parameters"):
            return all(isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Attribute)
                       and s.targets[0].attr == "requires_grad" for s in node.body)
        if iterated != f"{self.model}.modules" or not isinstance(node.target, ast.Name) or len(node.body) != 1:
            return False
        check, var = node.body[0], node.target.id
        if not (isinstance(check, ast.If) and not check.orelse and len(check.body) == 1
                and isinstance(check.test, ast.Call) and dotted_name(check.test.func) == "hasattr"
                and len(check.test.args) == 2 and dotted_name(check.test.args[0]) == var
                and isinstance(check.test.args[1], ast.Constant) and isinstance(check.test.args[1].value, str)):
            return False
        method = check.test.args[1].value
        step = check.body[0]
        if not (isinstance(step, ast.Expr) and isinstance(step.value, ast.Call) and not step.value.args
                and dotted_name(step.value.func) == f"{var}.{method}" and self.weights is not None):
            return False
        self.deploy.append(f"each:{method}")
        return True


def _string_assignment(body: list[ast.stmt]) -> tuple[str, str] | None:
    if len(body) == 1 and isinstance(body[0], ast.Assign) and len(body[0].targets) == 1 \
            and isinstance(body[0].targets[0], ast.Name) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0].targets[0].id, body[0].value.value
    return None


def _normalise(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/"))
