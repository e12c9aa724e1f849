"""LGVAN, NTIRE 2023 ESR team 18 (Dase-IDEALab): the team's network and checkpoint, input 0..1."""

from ntire_bench.archs.lgvan import LGVAN
from ntire_bench.plugins import Submission

SUBMISSION = Submission(
    name="lgvan",
    team="Dase-IDEALab (NTIRE 2023 ESR team 18)",
    model=LGVAN,
    checkpoint="ntire2023_lgvan_team18.pth",
    sha256="fe201971de6fb18e62fd17d7c10817cf406d68b7aa2adb5f00474a066b05e0ec",
    state_dict_key="params_ema",
    data_range=1.0,
    description="Local-Global Visual Attention Network, 9 blocks x 32 channels (NTIRE 2023 ESR)",
)
