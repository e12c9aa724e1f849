"""Scoring uploaded SR images without a model: safe intake of folders and zips, per-image checks, metrics."""

from ntire_bench.uploads.intake import UploadError, UploadLimits, UploadProblem, match_uploads, open_upload
from ntire_bench.uploads.evaluate import EvaluationResult, ReferenceDataError, ReferenceSet, evaluate_uploads

__all__ = ["evaluate_uploads", "EvaluationResult", "match_uploads", "open_upload", "ReferenceDataError",
    "ReferenceSet", "UploadError", "UploadLimits", "UploadProblem"]
