"""DLGSANet tiny and light x4 (ICCV 2023), written from the paper; no x4 weights are shipped."""

from ntire_bench.archs.dlgsanet import dlgsanet_light, dlgsanet_tiny
from ntire_bench.plugins import Submission

SUBMISSIONS = [
    Submission(
        name="dlgsanet_tiny",
        team="Li, Pan, Tang, Dong (ICCV 2023)",
        model=dlgsanet_tiny,
        checkpoint="dlgsanet_tiny_x4.pth",
        data_range=1.0,
        description="DLGSANet-tiny: 3 RHDTG x 3 HDTB, 48 channels, 6 heads (paper architecture)",
    ),
    Submission(
        name="dlgsanet_light",
        team="Li, Pan, Tang, Dong (ICCV 2023)",
        model=dlgsanet_light,
        checkpoint="dlgsanet_light_x4.pth",
        data_range=1.0,
        description="DLGSANet-light: 4 RHDTG x 3 HDTB, 48 channels, 6 heads (paper architecture)",
    ),
]
