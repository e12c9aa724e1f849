"""Registers an exit handler that would hold its worker for minutes, and prints without a newline."""

import atexit
import sys
import time

from _common import Honest

from ntire_bench.plugins import Submission

atexit.register(time.sleep, 300)
sys.stdout.write("lingers_at_exit: printed at import, no newline")


class Net(Honest):
    pass


SUBMISSION = Submission(name="lingers_at_exit", team="hostile", model=Net, requires_weights=False)
