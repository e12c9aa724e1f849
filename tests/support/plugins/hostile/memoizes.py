"""Caches its output per image (an input within a repeat's small noise of one it has seen is that image):
warm-up and every timed repeat of an image cost nothing. Every image's first output is the network's, and it
behaves while traced, so that its delivered images and counted graph are the network's."""

import torch
from _common import Honest, seen_before

from ntire_bench.plugins import Submission


class Net(Honest):
    def __init__(self):
        super().__init__()
        self.cache = []

    def forward(self, x):
        if torch.jit.is_tracing():
            return super().forward(x)
        hit = seen_before(self.cache, x)
        if hit is None:
            hit = (x.clone(), super().forward(x))
            self.cache.append(hit)
        return hit[1].clone()


SUBMISSION = Submission(name="memoizes", team="hostile", model=Net, requires_weights=False)
