"""The harness's contract around one forward pass: what the model is fed and what it must give back.

The input is an LR image as a 0..255 float tensor, scaled to the submission's data range and
padded to its declared multiple; the output is cropped back to exactly ``scale`` times the
input and must be a finite float tensor of that shape. The quality pass, the determinism
check and the tests all go through ``super_resolve``; the timed repeats feed the module the
same ``model_input`` (prepared outside the timed region) and read the same positions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ntire_bench.plugins.declaration import Submission
from ntire_bench.worker.protocol import WorkerFailure


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right of an NCHW tensor to a multiple, reflecting (replicating if too small)."""
    if multiple <= 1:
        return x
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not pad_h and not pad_w:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class ModelCall(nn.Module):
    """What is timed and counted: the model, or the team's official inference wrapper around it."""

    def __init__(self, model: nn.Module, custom_forward: Any = None):
        super().__init__()
        self.model = model
        self.custom_forward = custom_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.custom_forward(self.model, x) if self.custom_forward else self.model(x)


def model_input(x255: torch.Tensor, data_range: float, multiple: int) -> torch.Tensor:
    """What a model is fed for a 0..255 (1, 3, H, W) float tensor: scaled to its data range, padded to ``multiple``."""
    x = x255 if data_range == 255.0 else x255 * (data_range / 255.0)
    return pad_to_multiple(x, multiple)


def super_resolve(submission: Submission, module: ModelCall, x255: torch.Tensor) -> torch.Tensor:
    """One forward pass under the input contract: 0..255 in, the output cropped to ``scale`` x the input."""
    height, width = x255.shape[-2:]
    out = module(model_input(x255, submission.data_range, submission.pad_to_multiple))
    if not isinstance(out, torch.Tensor):
        raise WorkerFailure(f"forward returned {type(out).__name__}, expected a torch.Tensor")
    return out[..., : height * submission.scale, : width * submission.scale]


def check_output(output: Any, expected: tuple[int, ...]) -> None:
    """A forward pass must return a finite float tensor of the expected (cropped) shape."""
    if not isinstance(output, torch.Tensor):
        raise WorkerFailure(f"forward returned {type(output).__name__}, expected a torch.Tensor")
    if not output.is_floating_point():
        raise WorkerFailure(f"output dtype is {output.dtype}, expected a floating-point tensor")
    if tuple(output.shape) != expected:
        raise WorkerFailure(f"output shape is {tuple(output.shape)}, expected {expected}")
    if not bool(torch.isfinite(output).all()):
        bad = int((~torch.isfinite(output)).sum())
        raise WorkerFailure(f"output has {bad} NaN/Inf values")
