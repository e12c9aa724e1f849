"""ntire-bench: evaluation harness for NTIRE-style Efficient Super-Resolution challenges."""

from ntire_bench.util.version import __version__

__all__ = ["__version__"]
