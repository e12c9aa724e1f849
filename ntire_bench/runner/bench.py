"""``ntire-bench bench``: one submission timed on given LR arrays, no dataset, no metrics, weights optional."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ntire_bench.runner.passes import run_pass
from ntire_bench.runner.assembly import dataset_runtime, image_runtime
from ntire_bench.runner.audit import DatasetAudit
from ntire_bench.runner.context import Identity, RunConfig, worker_factory
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.plugins.checkpoints import model_zoo_dirs, resolve_checkpoint
from ntire_bench.runner.evaluation import make_context


def bench_submission(entry: PluginEntry, inputs: Sequence[np.ndarray], config: RunConfig) -> dict[str, Any]:
    """Runtime only: time a submission on LR arrays, ``config.runs`` passes in fresh workers.

    Needs no dataset and no weights (a missing checkpoint leaves random initial weights,
    which time the same). The parent's clock and input checks apply as in a run.
    """
    if not entry.ok or entry.info is None:
        raise WorkerFailure(entry.error or f"{entry.name}: broken plugin")
    ctx = replace(make_context(config, []), hidden=[])  # no dataset, no results: nothing to hide
    info = entry.info
    base = Path(info.code_root) if info.kind == "ntire-team" and info.code_root else None
    checkpoint = resolve_checkpoint(info.checkpoint, model_zoo_dirs(config.model_zoo), base)
    start = worker_factory(entry, Identity("bench", {}, checkpoint, None), ctx)
    audit = DatasetAudit(info.data_range)
    rng = np.random.default_rng(config.seed)
    passes = []
    for _ in range(config.runs):
        worker, _loaded = start(False)
        try:
            passes.append(run_pass(worker, inputs, info.scale, config.timing_settings(ctx.device).repeats, audit, rng,
                                   image_label=lambda i: f"input {i}"))
        finally:
            worker.close()
    audit.finish()
    per_image = [image_runtime(passes, i) for i in range(len(inputs))]
    return {
        "submission": entry.name, "weights": checkpoint is not None, "inputs": [list(lr.shape[:2]) for lr in inputs],
        "runtime_ms": dataset_runtime(passes, per_image), "settings": ctx.settings, "environment": ctx.environment,
        "audit": audit.record,
    }
