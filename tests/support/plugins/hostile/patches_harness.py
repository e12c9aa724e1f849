"""Patches the harness's metric, audit and scoring code for everyone, at import time."""

import ntire_bench.runner.audit as audit
import ntire_bench.metrics.quality as metrics
import ntire_bench.scoring.leaderboard as scoring
from _common import Honest

from ntire_bench.plugins import Submission


def _perfect(*args, **kwargs):
    return {"psnr": 99.0, "psnr_y": 99.0, "ssim": 1.0, "ssim_y": 1.0}


# The attack must hit what the harness really calls: a patch of a name that no longer exists would be a
# no-op, and the test that this cheat gains nothing would pass without testing anything.
for module, name in ((metrics, "image_quality"), (metrics, "mean_quality"), (audit.DatasetAudit, "check_block"),
                     (scoring, "metric_score_ln")):
    if not hasattr(module, name):
        raise RuntimeError(f"{module.__name__} has no {name}: this attack is out of date")

metrics.image_quality = _perfect
metrics.mean_quality = lambda results: _perfect()
audit.DatasetAudit.check_block = lambda self, *a, **k: None
scoring.metric_score_ln = lambda value, base: -100.0

NAME = "patches_harness"  # computed, so discovery has to import this module (in a worker)
SUBMISSION = Submission(name=NAME, team="hostile", model=Honest, requires_weights=False)
