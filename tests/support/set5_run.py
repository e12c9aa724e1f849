"""One ``run`` of rlfn and bicubic on Set5 per session, with the SR images saved: what the upload and Codabench
tests compare against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ntire_bench.data.datasets import DatasetSpec
from ntire_bench.results.records import OK, SubmissionResult

from support.paths import REPO, SHARED

VALID = "DIV2K_LSDIR_valid"


@dataclass(frozen=True)
class Set5Run:
    """What `run` measured on Set5 (as DIV2K_LSDIR_valid), and where it saved the SR images."""

    root: Path
    spec: DatasetSpec
    records: dict[str, SubmissionResult]

    def sr_dir(self, submission: str) -> Path:
        return self.root / "sr" / submission / VALID

    @property
    def results_dir(self) -> Path:
        return self.root / "results"


_RUN: dict[str, Set5Run] = {}


def set5_run(base: Path) -> Set5Run:
    """Run rlfn and bicubic on Set5 once per session (fixed timing, one repeat), saving their SR images."""
    if "run" in _RUN:
        return _RUN["run"]
    data, zoo = SHARED / "data" / "Set5", SHARED / "model_zoo"
    if not data.is_dir() or not (zoo / "ntire2024_rlfn_baseline.pth").is_file():
        pytest.skip(f"{SHARED} is missing: the ../shared benchmark material is not beside this checkout")
    from ntire_bench.runner.context import RunConfig
    from ntire_bench.data.datasets import prepare_datasets
    from ntire_bench.runner.discovery import discover
    from ntire_bench.runner.evaluation import run_benchmark

    root = base / "set5_run"
    repo = REPO
    spec = DatasetSpec(VALID, str(data / "HR"), str(data / "LR"), 4, 26.90)
    entries = discover([repo / "submissions" / "rlfn.py", repo / "submissions" / "bicubic.py"],
                       include_entry_points=False)
    for entry in entries:  # the runner writes into existing folders
        (root / "sr" / entry.name / VALID).mkdir(parents=True, exist_ok=True)
    config = RunConfig(out_dir=root / "results", model_zoo=(zoo,), timing="fixed", warmup=0, repeats=1, runs=1,
                       save_sr=root / "sr", progress=False, seed=0, log=lambda message: None)
    records = run_benchmark(entries, prepare_datasets([spec], progress=False), config)
    assert [r.status for r in records] == [OK, OK], [r.error for r in records]
    _RUN["run"] = Set5Run(root, spec, {r.submission: r for r in records})
    return _RUN["run"]


