"""LGVAN (NTIRE 2023 ESR factsheet), written from its description; no trained weights are published."""

from ntire_bench.archs.lgvan import LGVAN
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="lgvan",
    team="LGVAN authors (NTIRE 2023 ESR factsheet)",
    model=LGVAN,
    checkpoint="lgvan_x4.pth",
    data_range=1.0,
    description="Local-Global Visual Attention Network, 9 blocks x 32 channels (paper architecture)",
)
