"""Slows the clock the harness reads tenfold, so every forward pass looks ten times faster."""

import time

from _common import Slow

from ntire_bench.plugins import Submission

_real = time.perf_counter_ns
_start = _real()
time.perf_counter_ns = lambda: _start + (_real() - _start) // 10

SUBMISSION = Submission(name="clock_tamper", team="hostile", model=Slow, requires_weights=False)
