"""Where the harness lives: the one place that computes it from ``__file__``.

The sandbox grants workers ``PACKAGE_DIR`` (and never the repository beside it), the child's
``PYTHONPATH`` starts with ``IMPORT_ROOT``, and the harness fingerprint hashes every source
file under ``PACKAGE_DIR``; all three must agree wherever a module sits in the package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../ntire_bench
IMPORT_ROOT = PACKAGE_DIR.parent  # the directory that holds ntire_bench/ (what goes on sys.path)
