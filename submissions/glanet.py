"""GLA-Net (ICIP 2023) in a small configuration; window attention, so the harness pads the input."""

from functools import partial

from ntire_bench.archs.glanet import glanet_small
from ntire_bench.plugins import Submission

WINDOW_SIZE = 8

SUBMISSION = Submission(
    name="glanet",
    team="Pan, Hsu, Wei, Lin (ICIP 2023)",
    model=partial(glanet_small, window_size=WINDOW_SIZE),
    checkpoint="glanet_small_x4.pth",
    data_range=1.0,
    pad_to_multiple=WINDOW_SIZE,
    description="GLA-Net small: 3 dense GLA blocks x 2 layers, 32 channels, window 8 (paper architecture)",
)
