"""Codabench: competition bundles, and the scoring and ingestion programs the compute worker runs."""

from ntire_bench.codabench.spec import BundleError, BundleSpec
from ntire_bench.codabench.bundle import write_bundle
from ntire_bench.codabench.archive import validate_bundle
from ntire_bench.codabench.programs import score_program
from ntire_bench.codabench.ingest import ingest_program

__all__ = ["BundleError", "BundleSpec", "ingest_program", "score_program", "validate_bundle", "write_bundle"]
