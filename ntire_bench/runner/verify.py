"""Verifying timed outputs afresh: a few timed repeats, chosen after the run, recomputed in a new worker that
never saw the timed inputs; their outputs must equal what the timed worker reported (docs/isolation.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ntire_bench.runner.passes import PassOutcome
from ntire_bench.runner.audit import read_sr
from ntire_bench.runner.audit import VERIFY_TOLERANCE, NotCredible, compare_recomputed, perturbed_lr
from ntire_bench.runner.context import Identity, RunContext, worker_factory
from ntire_bench.data.datasets import PreparedDataset
from ntire_bench.data.images import read_image
from ntire_bench.plugins.declaration import PluginEntry


VERIFIED_PER_PASS = 2


@dataclass
class VerifyCandidate:
    """A timed repeat to recompute in a fresh worker: its input and what the timed worker reported."""

    dataset: str
    lr: np.ndarray
    offset: int
    noise: np.ndarray
    probes: list[list[int]]
    outputs: list[float]


@dataclass
class VerifyJob:
    """Recompute some timed repeats of one submission in a fresh worker (plain data, like PassJob)."""

    entry: PluginEntry
    identity: Identity
    candidates: list[VerifyCandidate]
    tolerance: float = VERIFY_TOLERANCE  # fraction of white (audit.verify_tolerance)


def pick_candidates(dataset: PreparedDataset, outcomes: Sequence[PassOutcome], rng: np.random.Generator,
                    per_pass: int = VERIFIED_PER_PASS) -> list[VerifyCandidate]:
    """A few (image, repeat) pairs per pass, at random."""
    chosen = []
    for outcome in outcomes:
        record = outcome.record
        for i in rng.choice(len(record.blocks), size=min(per_pass, len(record.blocks)), replace=False):
            block = record.blocks[int(i)]
            k = int(rng.integers(0, len(block.outputs)))  # any repeat, warm-up ones included
            chosen.append(VerifyCandidate(dataset.spec.name, read_image(dataset.pairs[int(i)].lr_path),
                                          block.offsets[k], record.noise, block.probes, block.outputs[k]))
    return chosen


def verify_repeats(worker: Any, candidates: list[VerifyCandidate], scale: int, data_range: float,
                   tolerance: float = VERIFY_TOLERANCE) -> float:
    """Recompute each candidate's input as an ordinary image in ``worker`` (fresh, never saw the timed inputs);
    return the largest difference (fraction of white), raising NotCredible beyond ``tolerance``."""
    worst = 0.0
    for dataset in dict.fromkeys(c.dataset for c in candidates):
        todo = [c for c in candidates if c.dataset == dataset]
        noise_path = worker.tmp / "noise.npy"
        np.save(noise_path, np.zeros(2 * max(c.lr.size for c in todo) + 1, dtype=np.int8), allow_pickle=False)
        worker.request("begin_dataset", noise=str(noise_path))
        for candidate in todo:
            lr = perturbed_lr(candidate.lr, candidate.noise, candidate.offset)
            lr_path, sr_path = worker.tmp / "lr.npy", worker.tmp / "sr.npy"
            np.save(lr_path, lr, allow_pickle=False)
            # recomputed, never timed: the fixed warm-up passes an ordinary image gets would buy nothing here
            worker.request("image", input=str(lr_path), output=str(sr_path), check_determinism=False, warm_up=False)
            read_sr(sr_path, lr.shape, scale)
            reply, _ = worker.request("challenge", probes=candidate.probes)
            difference = compare_recomputed(candidate.outputs, reply["reference"], data_range)
            worst = max(worst, difference)
            if not difference <= tolerance:
                raise NotCredible(
                    f"on {dataset}, a timed repeat's output differs by {difference * 255:.3g} grey levels from the "
                    f"same input's output recomputed in a fresh process (tolerance {tolerance * 255:.2g}): "
                    "the timed forward was not the model's (memoized, cached or substituted)")
        worker.request("end_dataset")
    return worst


def verify_worker(entry: PluginEntry, identity: Identity, ctx: RunContext) -> Any:
    """A fresh worker for ``run_verify_job``, not loaded: started ahead (beside a pass's model worker, which it
    then waits out, idle, never sent a timed input), it has imported what it needs when verification comes. It
    times nothing, so it is not held to the timing cores."""
    return worker_factory(entry, identity, ctx, ctx.config.out_dir / "logs" / f"{entry.name}.log").spawn(pinned=False)


def run_verify_job(job: VerifyJob, ctx: RunContext, worker: Any = None) -> float:
    """Run a verification job in a fresh confined worker (``worker``, from ``verify_worker``, or one started now;
    closed either way); the largest difference found (fraction of white)."""
    info = job.entry.info
    assert info is not None
    start = worker_factory(job.entry, job.identity, ctx, ctx.config.out_dir / "logs" / f"{job.entry.name}.log")
    if worker is None:
        worker, _ = start(False)
    else:
        start.load(worker, False)
    try:
        return verify_repeats(worker, job.candidates, info.scale, info.data_range, job.tolerance)
    finally:
        worker.close()
