"""Model complexity as the official NTIRE ESR code counts it.

- params: ``sum(p.numel() for p in model.parameters())`` of the model as built, before any forward
  (``select_model`` returns it so; a model that fuses or drops layers on its first call has fewer after).
- FLOPs: plain ``fvcore.nn.FlopCountAnalysis(model, torch.rand(1, 3, H, W)).total()``
  (one multiply-add = 1; conv bias, element-wise ops, activations and pixel shuffle
  count 0; bilinear upsampling counts 4 per output element, fvcore's own rule).
- activations: the sum of ``output.numel()`` over every ``nn.Conv2d`` and ``nn.ConvTranspose2d`` call.
- num_conv: the number of those calls (a module called twice counts twice), as the official
  ``utils/model_summary.get_model_activation`` counts them.

All at 1x3x256x256 by default, the size the official figures use. The official activation (and 2023 FLOP)
counters feed ``torch.FloatTensor(1, 3, H, W)``: uninitialised memory, which a fresh allocation of that size
fills with zeros, so they run here on zeros (``official_input``); fvcore's FLOPs run on ``torch.rand``. A
figure that comes out otherwise on the other input depends on the input, and is recorded as such
(``ComplexityResult.input_dependent``).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from ntire_bench.complexity.graph import ModuleCall
from ntire_bench.complexity.rules import FVCORE, HOOKED_KINDS, NTIRE2023, flops_2023_of_call
from ntire_bench.results.records import ComplexityResult

DEFAULT_INPUT_SIZE = (256, 256)


def _dummy_input(input_size: tuple[int, int], device: str | torch.device) -> torch.Tensor:
    h, w = input_size
    return torch.rand(1, 3, h, w, device=device)


def official_input(input_size: tuple[int, int], device: str | torch.device = "cpu") -> torch.Tensor:
    """What ``torch.FloatTensor(1, 3, H, W)`` holds in a fresh process: zeros (freshly mapped pages)."""
    return torch.zeros(1, 3, *input_size, device=device)


@contextmanager
def _eval_no_grad(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; every module's previous mode is restored (each its own: a
    wrapper built around an eval model is in training mode, and ``train(True)`` on it would reach the model)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


@contextmanager
def _quiet_fvcore() -> Iterator[None]:
    # fvcore logs each skipped operator and the tracer warns about Python control flow;
    # we return the skipped operators instead of printing them.
    logger = logging.getLogger("fvcore")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def count_params(model: nn.Module) -> int:
    """Number of parameters, shared ones counted once (``model.parameters()`` de-duplicates)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(
    model: nn.Module, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, device: str | torch.device = "cpu"
) -> tuple[int, dict[str, int]]:
    """fvcore FLOPs of one forward pass at 1x3xHxW, and the operators fvcore skipped (name -> calls).

    The model must already be on ``device``.
    """
    x = _dummy_input(input_size, device)
    with _eval_no_grad(model), _quiet_fvcore():
        from fvcore.nn import FlopCountAnalysis  # lazily, and quietly: its import warns on new torch

        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        total = int(analysis.total())
        unsupported = dict(sorted(analysis.unsupported_ops().items()))
    return total, unsupported


@dataclass
class _ConvTally:
    activations: int = 0
    calls: int = 0


# The layers the official activation counter hooks (utils/model_summary.py).
_COUNTED_LAYERS = (nn.Conv2d, nn.ConvTranspose2d)


@contextmanager
def _tally_conv_outputs(model: nn.Module) -> Iterator[_ConvTally]:
    """Count Conv2d/ConvTranspose2d output elements and calls over the forward passes inside."""
    tally = _ConvTally()

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        tally.activations += int(output.numel())  # a traced value while fvcore traces
        tally.calls += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _COUNTED_LAYERS)]
    try:
        yield tally
    finally:
        for handle in handles:
            handle.remove()


def count_activations(
    model: nn.Module, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, device: str | torch.device = "cpu"
) -> tuple[int, int]:
    """(activations, num_conv): Conv2d/ConvTranspose2d output elements summed over every call, and the calls, on
    the official input."""
    return _hooked_counts(model, official_input(input_size, device))[1:]


def peak_memory_mb(
    model: nn.Module, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, device: str | torch.device = "cpu"
) -> float | None:
    """Peak CUDA memory allocated (MiB, weights included) during one no-grad forward; None off CUDA."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    x = _dummy_input(input_size, device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    with _eval_no_grad(model):
        model(x)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def measure_complexity(
    model: nn.Module, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, device: str | torch.device = "cpu"
) -> ComplexityResult:
    """Params (as built), FLOPs by every convention, activations, Conv2d count and (on CUDA) peak memory, in eval
    mode without autograd, each on its official input (module docstring)."""
    input_size = (int(input_size[0]), int(input_size[1]))
    params = count_params(model)  # before any forward: the model as built
    with _tally_conv_outputs(model) as on_rand:  # rides along fvcore's single traced forward
        flops, unsupported = count_flops(model, input_size, device)
    flops_2023, activations, num_conv = _hooked_counts(model, official_input(input_size, device))
    dependent = {name: other for name, other, official in
                 (("activations", on_rand.activations, activations), ("num_conv", on_rand.calls, num_conv))
                 if other != official}
    return ComplexityResult(
        params=params,
        flops=flops,
        activations=activations,
        num_conv=num_conv,
        unsupported_ops=unsupported,
        input_size=list(input_size),
        peak_memory_mb=peak_memory_mb(model, input_size, device),
        flops_by_convention={FVCORE: flops, NTIRE2023: flops_2023},
        input_dependent=dependent,
    )


def _hooked_counts(model: nn.Module, x: torch.Tensor) -> tuple[int, int, int]:
    """One forward on ``x`` with the official hooks: (2023 FLOPs, activations, Conv2d calls)."""
    hooked = tuple(getattr(nn, kind) for kind in HOOKED_KINDS)
    calls: list[tuple[ModuleCall, str]] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        kind = HOOKED_KINDS[next(i for i, cls in enumerate(hooked) if isinstance(module, cls))]
        calls.append((ModuleCall("", kind, module, list(inputs), output), kind))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, hooked)]
    try:
        with _eval_no_grad(model):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    convs = [call for call, kind in calls if kind in ("Conv2d", "ConvTranspose2d")]
    return (sum(flops_2023_of_call(call, kind) for call, kind in calls),
            sum(int(call.output.numel()) for call in convs), len(convs))


def count_flops_2023(model: nn.Module, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
                     device: str | torch.device = "cpu") -> int:
    """The NTIRE 2022/2023 counter (``utils/model_summary.get_model_flops``) on a live model: forward hooks on the
    hooked layer types (``isinstance``, so subclasses count), one count per call, on the official input
    ``torch.FloatTensor(1, 3, H, W)`` (zeros, see ``official_input``)."""
    return _hooked_counts(model, official_input(input_size, device))[0]
