"""EDSR-baseline x4, plain and with GGAS + CWSS (ICASSP 2022); no weights are shipped."""

from ntire_bench.archs.edsr_ggas import edsr_baseline, edsr_baseline_ggas_cwss
from ntire_bench.plugins import Submission

SUBMISSIONS = [
    Submission(
        name="edsr_baseline",
        team="Lim et al. (CVPRW 2017)",
        model=edsr_baseline,
        checkpoint="edsr_baseline_x4.pth",
        data_range=255.0,
        description="EDSR-baseline x4: 16 residual blocks, 64 channels",
    ),
    Submission(
        name="edsr_ggas",
        team="Du, Liu, Tang, Wu (ICASSP 2022)",
        model=edsr_baseline_ggas_cwss,
        checkpoint="edsr_ggas_cwss_x4.pth",
        data_range=255.0,
        description="EDSR-baseline x4 + global-guided attention (GGAS) + channel-wise scaling (CWSS)",
    ),
]
