"""Leaves a detached process, a thread and changed torch settings behind for its neighbours."""

import subprocess
import sys
import threading
import time

import torch
from _common import Honest

from ntire_bench.plugins import Submission

MARKER = "ntire-bench-hostile-leftover"


def _linger():
    while True:
        time.sleep(1)


class Net(Honest):
    started = False

    def forward(self, x):
        if not Net.started:
            Net.started = True
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", MARKER], start_new_session=True)
            threading.Thread(target=_linger, daemon=True).start()
            torch.set_num_threads(8)
            torch.backends.cudnn.benchmark = True
            torch.set_flush_denormal(True)
        return super().forward(x)


SUBMISSION = Submission(name="leaves_processes", team="hostile", model=Net, requires_weights=False)
