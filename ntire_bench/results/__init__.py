"""What a run measured: typed records with one JSON format, the results store, published tables and provenance.

``records`` defines the format, ``store`` reads and writes one file per submission atomically
and plans resumes, ``published`` turns an organisers' table into records, and ``provenance``
collects the environment that produced a result (it imports torch, so it is not re-exported here).
"""

from ntire_bench.results.records import (FAILED, METRIC_KEYS, NO_WEIGHTS, OK, RUNNING, ComplexityResult,
    DatasetResult, ImageResult, RecordError, RuntimeStats, SubmissionResult)
from ntire_bench.results.store import ResultsError, ResultsStore, atomic_write_json, read_result
from ntire_bench.results.published import PublishedTableError, load_metrics_csv

__all__ = ["atomic_write_json", "ComplexityResult", "DatasetResult", "FAILED", "ImageResult", "load_metrics_csv",
    "METRIC_KEYS", "NO_WEIGHTS", "OK", "PublishedTableError", "read_result", "RecordError", "ResultsError",
    "ResultsStore", "RUNNING", "RuntimeStats", "SubmissionResult"]
