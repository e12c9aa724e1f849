"""``python -m ntire_bench.sandbox MODULE [ARGS]``: enter the sandbox named in the environment, then run MODULE.

Only the standard library is imported before the sandbox is entered (Landlock, seccomp and
capability changes bind the calling thread, and numpy starts threads on import).
"""

import runpy
import sys

from ntire_bench.sandbox.confine import SandboxError, enter_from_environment


def main(argv: list[str] | None = None) -> None:
    """Enter the sandbox, then run MODULE as ``__main__``; MODULE's own ``enter_from_environment()`` gets the report."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m ntire_bench.sandbox MODULE [ARGS...]")
    try:
        enter_from_environment()
    except SandboxError as exc:
        raise SystemExit(f"sandbox: {exc}") from None
    sys.argv = args
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
