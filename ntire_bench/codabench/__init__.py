"""Codabench: competition bundles, and the scoring and ingestion programs the compute worker runs.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "spec": ["BundleError", "BundleSpec"],
    "bundle": ["write_bundle"],
    "archive": ["BundleReport", "check_bundle", "validate_bundle"],
    "programs": ["score_program"],
    "ingest": ["ingest_program"],
})
