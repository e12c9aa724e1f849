from _common import Base

from ntire_bench.plugins import Submission

# The test writes a checkpoint with the wrong keys under this name into its model zoo.
SUBMISSION = Submission(name="bad_checkpoint", team="hostile", model=Base, checkpoint="bad_checkpoint.pth")
