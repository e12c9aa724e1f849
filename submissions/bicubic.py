"""Bicubic upscaling: listed as a reference point, never ranked."""

from ntire_bench.archs.bicubic import Bicubic
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="bicubic",
    team="reference",
    model=Bicubic,
    requires_weights=False,
    data_range=255.0,
    reference=True,
    description="MATLAB-compatible bicubic x4 (a=-0.5)",
)
