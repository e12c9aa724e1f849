"""Raises torch's thread count and tries to widen its CPU affinity to every core before each forward."""

import os

import torch
from _common import Honest

from ntire_bench.plugins import Submission


class Net(Honest):
    def forward(self, x):
        torch.set_num_threads(8)
        try:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        except OSError as exc:
            print(f"grabs_threads: sched_setaffinity refused: {exc}", flush=True)
        return super().forward(x)


SUBMISSION = Submission(name="grabs_threads", team="hostile", model=Net, requires_weights=False)
