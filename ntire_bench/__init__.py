"""ntire-bench: evaluation harness for NTIRE-style Efficient Super-Resolution challenges."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ntire-bench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
