"""Submission plugins: the declaration a team writes, read without running the team's code.

``from ntire_bench.plugins import Submission`` is the one import a submission needs.
``declaration`` defines ``Submission`` and the plain ``SubmissionInfo`` the parent holds;
``static`` reads literal declarations from source; ``checkpoints`` finds weights in the model zoo.
"""

from ntire_bench.plugins.declaration import ENTRY_POINT_GROUP, YAML_SUFFIXES, PluginEntry, PluginError, Submission, SubmissionInfo
from ntire_bench.plugins.checkpoints import model_zoo_dirs, resolve_checkpoint
from ntire_bench.plugins.static import read_static

__all__ = ["ENTRY_POINT_GROUP", "model_zoo_dirs", "PluginEntry", "PluginError", "read_static", "resolve_checkpoint",
    "Submission", "SubmissionInfo", "YAML_SUFFIXES"]
