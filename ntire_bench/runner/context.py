"""What a run measures with, and how it starts a submission's confined worker.

``RunConfig`` is the user's choice of settings; ``RunContext`` is what every submission of one
run shares (resolved device, environment, the settings record, the store, the paths workers
must never reach); ``Identity`` is what identifies one submission's measurement. All three are
plain data, so an executor can ship them to another machine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ntire_bench.worker.client import InProcessWorker, IsolatedWorker, WorkerLimits, python_path_entries
from ntire_bench.data.datasets import DatasetError, DatasetSpec
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.results.records import Environment, Settings
from ntire_bench.timing.runtime import TimingSettings, default_cpu_threads, pinned_cores
from ntire_bench.util.paths import PACKAGE_DIR
from ntire_bench.results.store import ResultsStore


def hidden_paths(specs: Iterable[DatasetSpec], out_dir: Path) -> list[Path]:
    """What submission code must never reach, for discovery and measuring workers alike: each dataset's HR
    directory, the dataset root when its LR directory sits beside HR, and the results directory (unless
    the results directory holds the harness itself, which workers must import)."""
    results = Path(out_dir).resolve()
    hidden = set() if results == PACKAGE_DIR or results in PACKAGE_DIR.parents else {results}
    for spec in specs:
        try:
            hr, lr = spec.hr_path().resolve(), spec.lr_path()
        except DatasetError:  # a path variable that is not set: the dataset cannot be run either
            continue
        hidden.add(hr)
        if lr is not None and lr.resolve().parent == hr.parent:
            hidden.add(hr.parent)  # the dataset root holding HR/ and LR/
    return sorted(hidden)


# CPU: the headline's 95% interval the adaptive sampling aims at, ±1.5%: inside the 2% between-pass CV that flags
# a run as unstable, and well under what this machine drifts between passes (1-4%), which more samples per image
# cannot buy back (benchmarks/timing/timing_cost.py).
HEADLINE_TARGET_CPU = 0.015


def default_memory_limit() -> int | None:
    """Three quarters of physical memory: a runaway submission cannot take the host down."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.75)
    except (ValueError, OSError, AttributeError):
        return None


def _print(message: str) -> None:
    print(message)


@dataclass
class RunConfig:
    """How a run measures. Everything here that changes a number is part of the cache key."""

    out_dir: Path = Path("results")
    device: str = "auto"
    model_zoo: Sequence[Path] = ()
    warmup: int | None = None
    repeats: int | None = None
    runs: int = 1
    threads: int | None = None
    timing: str = "adaptive"  # "adaptive" | "fixed"
    target: float | None = None  # adaptive: relative half-width of the median's 95% interval
    timeout_s: float = 3600.0
    memory_limit_bytes: int | None = field(default_factory=default_memory_limit)
    isolate: bool = True
    sandbox: str = "auto"
    verify: bool = True
    force: bool = False
    cudnn_benchmark: bool = False
    complexity_size: tuple[int, int] = (256, 256)
    flop_convention: str = "fvcore"  # "fvcore" (2024 on) or "ntire2023-hooks": the edition's FLOP counter
    seed: int | None = None  # the parent's noise and probe choices; None: fresh each run
    save_sr: Path | None = None  # also write each SR image as <save_sr>/<submission>/<dataset>/<name>x4.png
    score_quality: bool = True  # False: LR-only datasets (Codabench ingestion), outputs saved, not scored
    cache_dir: Path | None = None
    progress: bool = True
    log: Callable[[str], None] = _print

    def threads_for(self, device: str) -> int | None:
        """Host threads for a worker: as asked, else all cores but one on CPU, torch's choice on CUDA."""
        if self.threads is not None:
            return self.threads
        return None if device.startswith("cuda") else default_cpu_threads()

    def cores_for(self, device: str) -> list[int] | None:
        """The cores a CPU worker is pinned to (as many as its threads); None on CUDA, where it is not pinned."""
        threads = self.threads_for(device)
        return pinned_cores(threads) or None if threads and not device.startswith("cuda") else None

    def timing_settings(self, device: str) -> TimingSettings:
        """The per-image timing rule for ``device`` (adaptive by default; see docs/runtime.md)."""
        on_cuda = device.startswith("cuda")
        # CPU: 0.03, not 0.01: at 0.01 one-thread CPU timings (per-image CV 2-4%) met the target in 2% of images,
        # so sampling always ran to the cap; the headline averages m images, ~0.03/sqrt(m) (benchmarks/timing/timing_cost.py).
        target = self.target if self.target is not None else (0.005 if on_cuda else 0.03)
        fixed = TimingSettings.for_device(device, self.warmup, self.repeats, mode=self.timing, target=target)
        # The median's 95% interval needs six samples; with a lower cap, sampling simply runs to it.
        return TimingSettings(**{**fixed.to_dict(), "min_repeats": min(6, fixed.repeats)})

    def image_target(self, device: str, images: int) -> float:
        """The adaptive target for each image of a dataset of ``images``: ``--target`` where given, and on CUDA
        0.005; on CPU the precision the headline (a mean of the images' medians, ±target/√m) needs,
        ``HEADLINE_TARGET_CPU`` · √m, and never tighter than the per-image default."""
        target = self.timing_settings(device).target
        if self.target is not None or device.startswith("cuda"):
            return target
        return max(target, HEADLINE_TARGET_CPU * math.sqrt(max(1, images)))

    def settings(self, device: str) -> Settings:
        """The measurement settings recorded with every result."""
        timing = self.timing_settings(device)
        return Settings(device=device, warmup=timing.warmup, repeats=timing.repeats, runs=self.runs,
                        threads=self.threads_for(device), cudnn_benchmark=self.cudnn_benchmark,
                        complexity_size=list(self.complexity_size), flop_convention=self.flop_convention,
                        isolated=self.isolate, timing=timing.mode,
                        target_ci=timing.target if timing.mode == "adaptive" else None)


@dataclass
class RunContext:
    """What every submission of one run shares."""

    config: RunConfig
    device: str
    environment: Environment
    settings: Settings
    store: ResultsStore
    hidden: list[Path]


@dataclass
class Identity:
    """What identifies one submission's measurement: its run key, dataset keys and checkpoint."""

    run_key: str
    dataset_keys: dict[str, str]
    checkpoint: Path | None
    checkpoint_sha256: str | None


@dataclass
class WorkerStarter:
    """Starts confined workers for one submission and loads them (``worker_factory``)."""

    limits: WorkerLimits
    config: dict[str, Any]
    isolate: bool
    device: str
    log_path: Path | None = None

    def spawn(self, pinned: bool = True) -> Any:
        """A fresh worker, not yet loaded: it imports what it needs, then waits. ``pinned=False``: not held to the
        timing cores, for a worker that times nothing (it may then start beside one that is loading)."""
        limits = self.limits if pinned else replace(self.limits, cores=())
        return (IsolatedWorker(limits, self.log_path, self.device) if self.isolate
                else InProcessWorker(limits, self.log_path, self.device))

    def load(self, worker: Any, count_complexity: bool = True) -> dict[str, Any]:
        """Load the submission into ``worker`` (closed if that fails); the load reply."""
        try:
            worker.renew_deadline()
            reply, _ = worker.request("load", config={**self.config, "count_complexity": count_complexity,
                                                      "workdir": str(worker.tmp)})
        except BaseException:
            worker.close()
            raise
        return reply["result"]

    def __call__(self, count_complexity: bool = True) -> tuple[Any, dict[str, Any]]:
        """Start a pinned worker and load it: the worker and the load reply."""
        worker = self.spawn()
        return worker, self.load(worker, count_complexity)


def worker_factory(entry: PluginEntry, identity: Identity, ctx: RunContext, log_path: Path | None = None
                   ) -> WorkerStarter:
    """What starts confined workers for ``entry`` and loads them (counting complexity or not).

    The worker may read the submission's own code (its directory, or the NTIRE checkout) and its
    checkpoint, never ``ctx.hidden`` (dataset roots, results).
    """
    info = entry.info
    assert info is not None
    readable = ([Path(entry.source).resolve().parent] if not entry.source.startswith("entry-point:")
                else python_path_entries(ctx.hidden))
    if info.code_root:
        readable.append(Path(info.code_root))
    if identity.checkpoint:
        readable.append(identity.checkpoint)
    limits = WorkerLimits(timeout_s=ctx.config.timeout_s, memory_bytes=ctx.config.memory_limit_bytes,
                          threads=ctx.settings.threads, readable=readable, hidden=ctx.hidden,
                          sandbox=ctx.config.sandbox, gpu=ctx.device.startswith("cuda"),
                          cores=tuple(ctx.environment.cpu_affinity or ()))
    config = {
        "source": entry.source, "name": entry.name, "info": info.to_dict(),
        "checkpoint": str(identity.checkpoint) if identity.checkpoint else None,
        "device": ctx.device, "threads": ctx.settings.threads, "cudnn_benchmark": ctx.config.cudnn_benchmark,
        "complexity_size": list(ctx.config.complexity_size),
        "timing": ctx.config.timing_settings(ctx.device).to_dict(),
    }
    return WorkerStarter(limits, config, ctx.config.isolate, ctx.device, log_path)


def wait_until_idle(workers: Any) -> None:
    """Return once every worker started ahead of its work has imported what it needs and waits: nothing of theirs
    then runs beside a timed pass."""
    for worker in workers:
        worker.request("ping")
