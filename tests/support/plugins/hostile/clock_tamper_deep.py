"""Slows the harness's own bound clock (not just time.perf_counter_ns) and hides the swap."""

import time

import ntire_bench.timing.runtime as runtime
from _common import Slow

from ntire_bench.plugins import Submission

_real = time.perf_counter_ns
_start = _real()
_slow = lambda: _start + (_real() - _start) // 10  # noqa: E731
runtime._PERF_COUNTER_NS = _slow
runtime.clocks_replaced = lambda: None

SUBMISSION = Submission(name="clock_tamper_deep", team="hostile", model=Slow, requires_weights=False)
