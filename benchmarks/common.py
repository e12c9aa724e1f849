"""What the benchmark scripts share: where the data and checkpoints are, the sets, the shipped submissions.

Run a benchmark from the repository root as a module, e.g. ``python -m benchmarks.timing.timing_cost``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

from ntire_bench.data.datasets import DatasetSpec, PreparedDataset, prepare_datasets
from ntire_bench.data.images import read_image
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.runner.context import RunConfig
from ntire_bench.runner.discovery import discover, select

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_DATA = SHARED / "data"
DEFAULT_ZOO = SHARED / "model_zoo"
SCALE = 4


def stage_totals(results: Sequence[Any]) -> dict[str, float]:
    """Seconds per stage (``SubmissionResult.stages``) summed over ``results``."""
    from ntire_bench.runner.stages import StageTimes

    totals = StageTimes()
    for result in results:
        totals.merge(result.stages or {})
    return totals.to_dict()


def stage_line(stages: dict[str, float], wall_s: float | None = None) -> str:
    """``process 12.3 s (10%) · load ...``: each stage's seconds and share of the wall time (or of their sum)."""
    whole = wall_s if wall_s else sum(stages.values()) or 1.0
    parts = [f"{stage} {seconds:.1f} s ({seconds / whole:.0%})" for stage, seconds in stages.items()]
    if wall_s:
        parts.append(f"unattributed {max(0.0, wall_s - sum(stages.values())):.1f} s")
    return " · ".join(parts)


def data_arguments(parser: argparse.ArgumentParser, model_zoo: bool = True) -> argparse.ArgumentParser:
    """``--data`` (a folder of ``<set>/HR`` and ``<set>/LR``) and, for runs with weights, ``--model-zoo``."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding <set>/HR and <set>/LR")
    if model_zoo:
        parser.add_argument("--model-zoo", type=Path, default=DEFAULT_ZOO, help="folder of the shipped checkpoints")
    return parser


def set_pairs(data: Path, name: str) -> list[tuple[Path, Path]]:
    """(HR, LR) paths of a set in the NTIRE layout ``<set>/HR/<n>.png`` + ``<set>/LR/<n>x4.png``."""
    hr_dir, lr_dir = data / name / "HR", data / name / "LR"
    if not hr_dir.is_dir() or not lr_dir.is_dir():
        raise SystemExit(f"error: {data / name}: no HR/ and LR/ folders there; pass --data pointing at the benchmark data")
    pairs = [(hr, lr_dir / f"{hr.stem}x{SCALE}.png") for hr in sorted(hr_dir.glob("*.png"))]
    missing = [str(lr) for _, lr in pairs if not lr.is_file()]
    if not pairs or missing:
        raise SystemExit(f"error: {lr_dir}: {len(missing)} LR file(s) missing (first {missing[:1]}) or no HR images")
    return pairs


def prepared_set(data: Path, name: str) -> PreparedDataset:
    """One set of ``--data`` as the runner takes it (pairs checked, fingerprinted)."""
    set_pairs(data, name)
    spec = DatasetSpec(name=name, hr_dir=str(data / name / "HR"), lr_dir=str(data / name / "LR"))
    return prepare_datasets([spec], progress=False)[0]


def shipped(names: Sequence[str]) -> list[PluginEntry]:
    """The named submissions of ``submissions/``."""
    return select(discover([REPO / "submissions"], include_entry_points=False), names)


def quiet_config(out_dir: Path, model_zoo: Path | None = None, **settings: Any) -> RunConfig:
    """A run's settings with no progress bars and no log lines (the benchmark prints its own figures)."""
    zoo = (model_zoo,) if model_zoo is not None else ()
    return RunConfig(out_dir=Path(out_dir), model_zoo=zoo, progress=False, log=lambda message: None, **settings)


def decode_all(pairs: Sequence[tuple[Path, Path]]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) to decode both files of every pair once, one after another."""
    start, cpu = time.perf_counter(), time.process_time()
    for first, second in pairs:
        read_image(first)
        read_image(second)
    return time.perf_counter() - start, time.process_time() - cpu
