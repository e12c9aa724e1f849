"""Patches the complexity counters in its own process at import time, so that it reports a tenth of its
FLOPs and no parameters: the official method (fvcore in the model's process) would believe it."""

import ntire_bench.complexity.counting as counting
import ntire_bench.worker.counting as worker_counting
from _common import Residual

from ntire_bench.plugins import Submission

# The attack must hit what the harness really calls (the worker binds the counter at its import): a patch of a
# name that no longer exists would be a no-op, and the test that this cheat gains nothing would pass without
# testing anything.
for name in ("measure_complexity", "count_params"):  # its own count (asked where no graph counts), params as built
    for module in (counting, worker_counting):
        if getattr(module, name, None) is not getattr(counting, name):
            raise RuntimeError(f"{module.__name__} has no {name}: this attack is out of date")

_measure = counting.measure_complexity


def _modest(*args, **kwargs):
    result = _measure(*args, **kwargs)
    result.flops //= 10
    result.params = 0
    return result


counting.measure_complexity = worker_counting.measure_complexity = _modest
counting.count_params = worker_counting.count_params = lambda model: 0
SUBMISSION = Submission(name="undercounts", team="hostile", model=Residual, requires_weights=False)
