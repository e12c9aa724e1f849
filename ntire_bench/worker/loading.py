"""Building a submission's model inside the worker: import, weights, re-parameterisation.

This module runs plugin code, so only worker processes import it. It turns what teams
actually deliver into one-line reasons instead of tracebacks: a missing third-party package,
hard-coded CUDA on a CPU machine, a checkpoint that needs arbitrary unpickling, keys that do
not match, a deploy step that changes the output.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ntire_bench.plugins.declaration import PluginError, Submission
from ntire_bench.util.text import one_line
from ntire_bench.util.hashing import sha256_file

# Keys under which training frameworks nest the weights (BasicSR, KAIR, plain PyTorch).
STATE_DICT_WRAPPERS = ("params_ema", "params", "state_dict", "model")
# A deploy step may change outputs by float rounding, never by more than this (fraction of white).
DEPLOY_TOLERANCE = 2e-3


@dataclass
class LoadNotes:
    """What building the model did that the results must show: warnings and organiser opt-ins."""

    warnings: list[str] = field(default_factory=list)
    opt_ins: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ importing plugins


def import_plugin_file(path: Path) -> list[Submission]:
    """Import one plugin file or package (its directory goes on sys.path) and return its declarations."""
    path = Path(path).resolve()
    target = path / "__init__.py" if path.is_dir() else path
    if not target.is_file():
        raise PluginError(f"{path}: no such plugin file")
    module_name = f"ntire_bench_submission_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(
        module_name, target, submodule_search_locations=[str(path)] if path.is_dir() else None)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Plugins may import sibling helper modules from their own directory.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # a plugin may raise anything, SystemExit included
        sys.modules.pop(module_name, None)
        raise PluginError(f"{path.name}: import failed: {explain_exception(exc, [path.parent])}") from exc
    return declared_in(module, path.name)


def import_entry_point(reference: str) -> list[Submission]:
    """Import ``module:attr`` published under the ntire_bench.submissions entry-point group."""
    module_name, _, attr = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, attr) if attr else module
    except BaseException as exc:
        raise PluginError(f"{reference}: import failed: {explain_exception(exc, [])}") from exc
    return [obj] if isinstance(obj, Submission) else declared_in(obj, reference)


def declared_in(module: Any, where: str) -> list[Submission]:
    """The ``SUBMISSION``/``SUBMISSIONS`` a module declares."""
    found = getattr(module, "SUBMISSIONS", None)
    if found is None:
        single = getattr(module, "SUBMISSION", None)
        found = [single] if single is not None else None
    if found is None:
        raise PluginError(f"{where}: defines neither SUBMISSION nor SUBMISSIONS")
    found = list(found)
    for item in found:
        if not isinstance(item, Submission):
            raise PluginError(f"{where}: SUBMISSION must be ntire_bench.plugins.Submission, got {type(item).__name__}")
    return found


# ------------------------------------------------------------------ explaining errors


def _team_frame(exc: BaseException, roots: list[Path]) -> str | None:
    """``file:line`` of the innermost traceback frame inside the submission's own code."""
    resolved = [str(Path(r).resolve()) for r in roots]
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if any(frame.filename.startswith(root + os.sep) for root in resolved):
            found = f"{Path(frame.filename).name}:{frame.lineno}"
    return found


def _is_local_module(name: str, roots: list[Path]) -> bool:
    top = name.split(".")[0]
    return any((Path(r) / top).exists() or (Path(r) / f"{top}.py").exists() for r in roots)


def explain_exception(exc: BaseException, roots: list[Path]) -> str:
    """A one-line reason for an exception raised by team code, naming the cause where it is known."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        if _is_local_module(exc.name, roots):
            return f"module '{exc.name}' is missing from the submission's own files"
        top = exc.name.split(".")[0]
        return (f"needs package '{top}', which is not installed here; install the challenge's requirements "
                "(pip install {0}) and re-run".format(top))
    text = one_line(exc)
    cuda_markers = ("Torch not compiled with CUDA", "Found no NVIDIA driver", "no CUDA GPUs are available",
                    "CUDA driver initialization failed", "Attempting to deserialize object on a CUDA device")
    if any(marker in text for marker in cuda_markers):
        where = _team_frame(exc, roots)
        at = f" at {where}" if where else ""
        return f"the team's code requires CUDA{at} ({text[:160]}); run it with --device cuda on a GPU machine"
    where = _team_frame(exc, roots)
    return f"{text} (at {where})" if where else text


# --------------------------------------------------------------- CUDA on a CPU machine


@contextlib.contextmanager
def cuda_calls_stay_on_cpu(notes: LoadNotes) -> Iterator[None]:
    """On a machine without CUDA, make ``.cuda()`` on tensors and modules a no-op (noted in the results).

    Team code often calls ``.cuda()`` unconditionally (in ``__init__`` or ``forward``); a
    CPU run is still meaningful for quality and complexity. Other CUDA-only calls
    (``device='cuda'``) still fail, with a reason that names the team's file and line.
    """
    if torch.cuda.is_available():
        yield
        return
    originals = (torch.Tensor.cuda, nn.Module.cuda)

    def tensor_cuda(self, *args, **kwargs):
        _note_once(notes, "the team's code calls .cuda(); on this CPU-only machine it stays on the CPU")
        return self

    def module_cuda(self, *args, **kwargs):
        _note_once(notes, "the team's code calls .cuda(); on this CPU-only machine it stays on the CPU")
        return self

    torch.Tensor.cuda, nn.Module.cuda = tensor_cuda, module_cuda
    try:
        yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda = originals


def install_cpu_cuda_fallback(notes: LoadNotes) -> None:
    """Keep ``cuda_calls_stay_on_cpu`` in force for the rest of the worker (forward passes included)."""
    if torch.cuda.is_available():
        return
    manager = cuda_calls_stay_on_cpu(notes)
    manager.__enter__()


def _note_once(notes: LoadNotes, text: str) -> None:
    if text not in notes.warnings:
        notes.warnings.append(text)


# ------------------------------------------------------------------------- weights


def _is_tensor_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def extract_state_dict(obj: Any, path: str | os.PathLike, key: str | list[str] | tuple[str, ...] | None = None
                       ) -> dict[str, torch.Tensor]:
    """The weights inside a checkpoint: under ``key`` (the first present, for a list), or unwrapped from the
    usual containers; a whole pickled model gives its ``state_dict()``. Names are kept as saved
    (``apply_state_dict`` decides about a ``module.`` prefix, knowing the model)."""
    state = obj
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if key is not None:
        keys = [key] if isinstance(key, str) else list(key)
        present = next((k for k in keys if isinstance(state, dict) and k in state), None)
        if present is None:
            top = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
            raise PluginError(f"{Path(path).name}: has no {' or '.join(repr(k) for k in keys)} entry "
                              f"(top-level keys {top}); fix state_dict_key in the declaration")
        state = state[present]
    while isinstance(state, dict) and not _is_tensor_dict(state):
        wrapper = next((k for k in STATE_DICT_WRAPPERS if k in state), None)
        if wrapper is None:
            raise PluginError(f"{Path(path).name}: not a state_dict; top-level keys are {sorted(map(str, state))[:8]}, "
                              f"expected tensors or one of {list(STATE_DICT_WRAPPERS)}")
        state = state[wrapper]
    if not isinstance(state, dict):
        raise PluginError(f"{Path(path).name}: holds a {type(state).__name__}, expected a state_dict of tensors")
    return state


def read_checkpoint(path: str | os.PathLike, expected_sha256: str | None, trust_pickle: bool,
                    notes: LoadNotes) -> Any:
    """``torch.load`` a checkpoint: ``weights_only=True`` unless the organisers opted in for this submission."""
    if expected_sha256:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise PluginError(f"{path}: sha256 is {actual}, the submission declares {expected_sha256}")
    try:
        return _ORIGINAL_TORCH_LOAD(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trust_pickle:
            raise PluginError(
                f"{Path(path).name} needs arbitrary unpickling (a pickled model or object), which weights_only=True "
                "refuses; after reviewing the team's code, opt in with trust_pickle: true in its declaration "
                f"({one_line(exc)[:120]})") from exc
    if "trust_pickle" not in notes.opt_ins:
        notes.opt_ins.append("trust_pickle")
    return _ORIGINAL_TORCH_LOAD(path, map_location="cpu", weights_only=False)


def apply_state_dict(model: nn.Module, state: dict[str, torch.Tensor], strict: bool, path: str | os.PathLike,
                     notes: LoadNotes) -> None:
    """Load ``state``; mismatched keys fail under ``strict`` and are recorded as a warning otherwise.

    A ``module.`` prefix (a DataParallel save) is dropped only when the model's own names lack it. A model
    whose class overrides ``load_state_dict`` (to fuse or rename before loading) is loaded through that
    method, as the official branch does: its names are checked after the team's code has run.
    """
    name = Path(path).name
    own = model.state_dict()
    state = _without_parallel_prefix(state, own)
    overriding = _overriding_class(model)
    if overriding is not None:
        _load_through_the_team_method(model, state, strict, name, overriding, notes)
        return
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise PluginError(f"{name} does not match the architecture: "
                          f"missing keys {_preview(missing)}; unexpected keys {_preview(unexpected)}")
    mismatched = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if mismatched:
        k = mismatched[0]
        raise PluginError(f"{name} does not match the architecture: {len(mismatched)} shape mismatch(es), "
                          f"first {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=strict)
    if not strict:
        detail = _key_detail(missing, unexpected)
        notes.warnings.append(f"weights loaded with strict=False as the official code does ({detail})")


def _without_parallel_prefix(state: dict[str, torch.Tensor], own: dict[str, Any]) -> dict[str, torch.Tensor]:
    prefix = "module."
    if state and all(k.startswith(prefix) for k in state) and not (own and all(k.startswith(prefix) for k in own)):
        return {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def _overriding_class(model: nn.Module) -> type | None:
    """The team's class that defines its own ``load_state_dict``, or None when ``nn.Module``'s is used."""
    for cls in type(model).__mro__:
        if cls is nn.Module:
            return None
        if "load_state_dict" in vars(cls):
            return cls
    return None


def _load_through_the_team_method(model: nn.Module, state: dict[str, torch.Tensor], strict: bool, name: str,
                                  cls: type, notes: LoadNotes) -> None:
    method = f"{cls.__name__}.load_state_dict"
    try:
        result = model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise PluginError(f"{name} does not load into the model: the team's own {method}() raised "
                          f"{one_line(exc, with_type=False)[:300]}") from exc
    if isinstance(getattr(result, "missing_keys", None), list):
        missing, unexpected = sorted(result.missing_keys), sorted(result.unexpected_keys)
    else:  # the override returned nothing usable: compare with the names the model has now
        after = model.state_dict()
        missing, unexpected = sorted(set(after) - set(state)), sorted(set(state) - set(after))
    detail = f"strict={strict}: {_key_detail(missing, unexpected)}"
    notes.warnings.append(f"weights loaded through the team's own {method}(), as the official code does ({detail})")


def _key_detail(missing: list[str], unexpected: list[str]) -> str:
    if not (missing or unexpected):
        return "every key matched"
    return f"missing keys {_preview(missing)}; unexpected keys {_preview(unexpected)}"


def _preview(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... {len(keys) - limit} more' if len(keys) > limit else ''}]"


_ORIGINAL_TORCH_LOAD = torch.load


def guard_torch_load(trust_pickle: bool, notes: LoadNotes) -> None:
    """Make team code's own ``torch.load`` calls follow the same pickle policy (weights_only unless trusted)."""

    @functools.wraps(_ORIGINAL_TORCH_LOAD)
    def guarded_load(f, *args, **kwargs):
        kwargs.setdefault("map_location", "cpu")
        if not trust_pickle:
            kwargs["weights_only"] = True
        elif kwargs.get("weights_only") is not True:
            kwargs["weights_only"] = False
            if "trust_pickle" not in notes.opt_ins:
                notes.opt_ins.append("trust_pickle")
        try:
            return _ORIGINAL_TORCH_LOAD(f, *args, **kwargs)
        except Exception as exc:
            if not trust_pickle and "weights_only" in str(exc).lower():
                raise PluginError(
                    f"{Path(str(f)).name} needs arbitrary unpickling, which weights_only=True refuses; after "
                    "reviewing the team's code, opt in with trust_pickle: true in its declaration") from exc
            raise

    torch.load = guarded_load


def load_weights(model: nn.Module, path: str | os.PathLike, expected_sha256: str | None = None,
                 state_dict_key: str | list[str] | tuple[str, ...] | None = None, strict: bool = True,
                 trust_pickle: bool = False) -> LoadNotes:
    """Load a checkpoint into ``model`` under the harness's rules; returns the notes to record.

    ``weights_only=True`` unless ``trust_pickle``; ``strict=True`` unless told otherwise (then
    the mismatched keys are a warning, never silent); a declared sha256 must match.
    """
    notes = LoadNotes()
    raw = read_checkpoint(path, expected_sha256, trust_pickle, notes)
    apply_state_dict(model, extract_state_dict(raw, path, state_dict_key), strict, path, notes)
    return notes


# -------------------------------------------------------------------------- deploy


def _deploy_step(step: str) -> Callable[[nn.Module], nn.Module]:
    if step.startswith("each:"):
        method = step.removeprefix("each:")

        def each(model: nn.Module) -> nn.Module:
            for module in list(model.modules()):
                if hasattr(module, method):
                    getattr(module, method)()
            return model
        return each

    def call(model: nn.Module) -> nn.Module:
        if not hasattr(model, step):
            raise PluginError(f"deploy step '{step}': the model has no method {step}()")
        result = getattr(model, step)()
        return result if isinstance(result, nn.Module) else model
    return call


def run_deploy(model: nn.Module, deploy: Callable[[Any], Any] | tuple[str, ...] | list[str] | None,
               data_range: float, probe_size: int, device: torch.device, notes: LoadNotes) -> nn.Module:
    """Re-parameterise ``model`` and prove the fused model gives the same output as the unfused one."""
    if not deploy:
        return model
    steps = [deploy] if callable(deploy) else [_deploy_step(s) for s in deploy]
    names = [getattr(deploy, "__name__", "custom")] if callable(deploy) else list(deploy)
    generator = torch.Generator().manual_seed(0)
    probe = (torch.rand(1, 3, probe_size, probe_size, generator=generator) * data_range).to(device)
    with torch.inference_mode():
        before = model(probe).float().clone()
    for step in steps:
        result = step(model)
        model = result if isinstance(result, nn.Module) else model
    model.eval()
    with torch.inference_mode():
        after = model(probe).float()
    if after.shape != before.shape:
        raise PluginError(f"deploy step {', '.join(names)} changed the output shape from "
                          f"{tuple(before.shape)} to {tuple(after.shape)}")
    change = float((after - before).abs().max())
    tolerance = DEPLOY_TOLERANCE * data_range
    if not change <= tolerance:
        raise PluginError(f"deploy step {', '.join(names)} changed the output by up to {change:.3g} "
                          f"(tolerance {tolerance:.3g}): the deployed model is not equivalent to the trained one")
    notes.warnings.append(f"deployed with {', '.join(names)} before timing and counting "
                          f"(output unchanged within {change:.2g})")
    return model
