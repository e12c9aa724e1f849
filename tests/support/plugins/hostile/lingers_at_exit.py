"""Registers an exit handler that would hold its worker for minutes, and prints, without a newline, to a
buffered stream of its own put in place of sys.stdout (only an explicit flush gets that text to the log)."""

import atexit
import io
import sys
import time

from _common import Honest

from ntire_bench.plugins import Submission

atexit.register(time.sleep, 300)
sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False), buffer_size=1 << 16),
                              write_through=False)
sys.stdout.write("lingers_at_exit: printed at import, no newline")


class Net(Honest):
    pass


SUBMISSION = Submission(name="lingers_at_exit", team="hostile", model=Net, requires_weights=False)
