"""Shared scaffolding for the hostile plugins: small models, and the worker internals they go after."""

import os
import stat
import sys

import torch
from torch import nn


class Base(nn.Module):
    """A random conv + pixel shuffle; hostile forwards call ``upscale``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class Honest(nn.Module):
    """Nearest-neighbour x4 plus a small learned-looking residual: a real network's behaviour, cheaply.

    The same as tests/support/plugins/good/tiny_net.py, so cheats built on it can be compared with it.
    """

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Conv2d(3, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=4, mode="nearest")
        return up + 0.01 * self.shuffle(self.body(x))


def pipe_fds() -> list[int]:
    """Every open file descriptor of this process that is a pipe (where a protocol would be)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                found.append(int(name))
        except OSError:
            pass
    return found


def seen_before(cache, x, levels: float = 2.5):
    """The ``(input, output)`` pair in ``cache`` whose input ``x`` is within ``levels`` grey levels of (a timed
    repeat of the same image, whose noise is one level), or None."""
    for pair in cache:
        if pair[0].shape == x.shape and float((pair[0] - x).abs().max()) <= levels / 255:
            return pair
    return None


def caller_local(name: str):
    """A local variable of the nearest calling frame that has one (how a plugin reads harness state)."""
    frame = sys._getframe(1)
    while frame is not None:
        if name in frame.f_locals:
            return frame.f_locals[name]
        frame = frame.f_back
    return None


class Residual(nn.Module):
    """A small nonlinear SR network (two convs and a ReLU over nearest x4): its response to a small input
    change is not something a linear shortcut can fake."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 48, 3, padding=1)
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = nn.functional.interpolate(x, scale_factor=4, mode="nearest")
        return up + 0.5 * self.shuffle(self.conv2(torch.relu(self.conv1(x))))


class Slow(Honest):
    """Honest, but each real forward pass takes at least 30 ms (so a tenfold clock shows)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing():
            import time

            time.sleep(0.03)
        return super().forward(x)
