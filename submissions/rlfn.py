"""RLFN, the NTIRE 2024 ESR baseline (official checkpoint, input 0..255)."""

from ntire_bench.archs.rlfn import RLFN
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="rlfn",
    team="NTIRE 2024 organisers (baseline)",
    model=RLFN,
    checkpoint="ntire2024_rlfn_baseline.pth",
    data_range=255.0,
    description="RLFN, NTIRE 2024 ESR baseline",
)
