"""Published figures: a CSV table (one row per team, as in a challenge report) read as results.

Columns: ``submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g``. Each row becomes a
``SubmissionResult`` whose runtime is given as-is (``scored_runtime_ms``), so a report's
table can be re-scored with the same code that scores measured results.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from ntire_bench.results.records import OK, ComplexityResult, DatasetResult, SubmissionResult

CSV_COLUMNS = ("submission", "psnr_valid", "psnr_test", "runtime_ms", "params_m", "flops_g")
CSV_DATASETS = {"psnr_valid": "DIV2K_LSDIR_valid", "psnr_test": "DIV2K_LSDIR_test"}


class PublishedTableError(ValueError):
    """The table is unusable; the message names the file, row and column."""


def _read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise PublishedTableError(f"{path}: missing column(s) {', '.join(missing)}; "
                                          f"the header must be {','.join(CSV_COLUMNS)}")
            reader.fieldnames = header
            return list(reader)
    except OSError as exc:
        raise PublishedTableError(f"{path}: cannot read the metrics file ({exc.strerror or exc}); check the path") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PublishedTableError(f"{path}: not a readable CSV file ({exc}); save it as UTF-8 CSV") from None


def _cell(path: Path, line: int, row: dict[str, str], column: str, allow_inf: bool = False) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or (math.isinf(value) and not allow_inf) or (not allow_inf and value < 0):
        raise PublishedTableError(f"{path}: row {line}, column {column}: '{text}' is not a valid number; "
                                  "write a plain non-negative number or leave the cell empty")
    return value


def load_metrics_csv(path: str | os.PathLike) -> list[SubmissionResult]:
    """One result per row. An empty PSNR cell means "not evaluated"; the runtime is scored as given."""
    path = Path(path)
    results: list[SubmissionResult] = []
    seen: set[str] = set()
    for line, row in enumerate(_read_rows(path), start=2):  # the header is row 1, as in a spreadsheet
        name = (row.get("submission") or "").strip()
        if not name:
            raise PublishedTableError(f"{path}: row {line}, column submission: empty; give every row a submission name")
        if name in seen:
            raise PublishedTableError(f"{path}: row {line}, column submission: '{name}' appears twice; "
                                      "keep one row per submission")
        seen.add(name)
        datasets = {}
        for column, dataset in CSV_DATASETS.items():
            psnr = _cell(path, line, row, column, allow_inf=True)
            if psnr is not None:
                datasets[dataset] = DatasetResult(num_images=0, psnr=psnr)
        params_m, flops_g = _cell(path, line, row, "params_m"), _cell(path, line, row, "flops_g")
        complexity = None
        if params_m is not None or flops_g is not None:
            complexity = ComplexityResult(
                params=round(params_m * 1e6) if params_m is not None else None,
                flops=round(flops_g * 1e9) if flops_g is not None else None,
                activations=None, num_conv=None)
        results.append(SubmissionResult(
            submission=name, status=OK, complexity=complexity, datasets=datasets,
            scored_runtime_ms=_cell(path, line, row, "runtime_ms"), origin=f"{path.name} row {line}",
        ))
    if not results:
        raise PublishedTableError(f"{path}: no rows below the header; add one row per submission")
    return results
