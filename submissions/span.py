"""SPAN with 28 channels, the NTIRE 2024 ESR winner (official checkpoint, input 0..1)."""

from ntire_bench.archs.span import SPAN
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="span",
    team="NTIRE 2024 ESR team 38 (SPAN authors)",
    model=SPAN,
    checkpoint="ntire2024_span_ch28.pth",
    data_range=1.0,
    description="SPAN ch28 (slim), NTIRE 2024 ESR winner",
)
