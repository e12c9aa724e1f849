"""EFDN, the NTIRE 2025 ESR baseline (official checkpoint, input 0..1)."""

from ntire_bench.archs.efdn import EFDN
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="efdn",
    team="NTIRE 2025 organisers (baseline)",
    model=EFDN,
    checkpoint="ntire2025_efdn_baseline.pth",
    data_range=1.0,
    description="EFDN, NTIRE 2025 ESR baseline",
)
