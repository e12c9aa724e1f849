"""Scoring uploaded SR images without a model: safe intake of folders and zips, per-image checks, metrics.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "intake": ["UploadError", "UploadLimits", "UploadProblem", "match_uploads", "open_upload"],
    "evaluate": ["EvaluationResult", "ReferenceDataError", "ReferenceSet", "evaluate_uploads"],
})
