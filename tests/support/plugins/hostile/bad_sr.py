"""Replaces the SR image the worker hands back with a float array of the wrong size."""

import numpy as np
from _common import Honest

from ntire_bench.plugins import Submission

_real_save = np.save


def _save(path, array, *args, **kwargs):
    if str(path).endswith("sr.npy"):
        array = np.full((3, 7, 7), np.nan, dtype=np.float32)
    return _real_save(path, array, *args, **kwargs)


np.save = _save

SUBMISSION = Submission(name="bad_sr", team="hostile", model=Honest, requires_weights=False)
