"""Where the test material is: the repository, ../shared beside it, and the support plugins and fixtures."""

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
SHARED = REPO.parent / "shared"
PLUGINS = SUPPORT / "plugins"  # good/ and hostile/ submission plugins
FIXTURES = SUPPORT / "fixtures"  # synthetic NTIRE checkouts with real-world quirks
PROBE_DIR = SUPPORT / "sandbox_probe"  # programs run inside a sandbox to attack it
