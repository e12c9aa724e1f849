"""RFDN, the NTIRE 2023 ESR baseline (official checkpoint, input 0..255)."""

from ntire_bench.archs.rfdn import RFDN
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="rfdn",
    team="NTIRE 2023 organisers (baseline)",
    model=RFDN,
    checkpoint="ntire2023_rfdn_baseline.pth",
    sha256="11af8ec8ebd68689e90ef1e29044f9804c72d3bd9f7573820b7b26035782760c",
    data_range=255.0,
    description="RFDN, NTIRE 2023 ESR baseline",
)
