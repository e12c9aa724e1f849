"""OS-level confinement of untrusted submission workers (docs/isolation.md).

``policy`` says what a worker may read, write and never reach; ``bubblewrap`` and ``landlock``
enforce it; ``confine`` picks the strongest mechanism that works (``probe``), wraps a command
(``wrap``) and enters the sandbox from inside the child (``enter_from_environment``).
Standard library only: a worker imports this package before numpy or torch.
"""


from ntire_bench.sandbox.confine import enter_from_environment, probe, wrap
from ntire_bench.sandbox.policy import ALWAYS_HIDDEN, ENV_VAR, MECHANISMS, SandboxError, SandboxPolicy, SandboxReport, base_readable_paths, carve
from ntire_bench.sandbox.landlock import apply_landlock, landlock_abi

__all__ = ["ALWAYS_HIDDEN", "ENV_VAR", "MECHANISMS", "SandboxError", "SandboxPolicy", "SandboxReport", "apply_landlock", "base_readable_paths", "carve", "enter_from_environment", "landlock_abi", "probe", "wrap"]
