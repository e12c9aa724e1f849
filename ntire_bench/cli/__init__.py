"""The ``ntire-bench`` command line: a thin click layer over the Python API."""

from ntire_bench.cli.main import main

__all__ = ["main"]
