"""Not an attack: the network the complexity cheats are built on, declared honestly, so their figures can be
compared with what it measures."""

from _common import Residual

from ntire_bench.plugins import Submission

SUBMISSION = Submission(name="honest_residual", team="tests", model=Residual, requires_weights=False)
