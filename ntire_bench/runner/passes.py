"""Measuring: one timing pass of one submission over one dataset, and verifying timed outputs afresh.

A *pass* sends every LR image of a dataset to one fresh worker: the quality pass and warm-up
(``image``), then a timed block (``time``) whose repeats see noise the parent draws at that
moment. The parent validates the SR image the worker wrote before any metric, scores quality
(first pass), and checks every timed block (audit.py). ``PassJob`` and ``VerifyJob`` are plain
data and ``run_pass_job``/``run_verify_job`` need nothing but the local machine, so an
executor can run them here or on another node; ``assemble_dataset`` turns the passes into the
dataset's result.
"""

from __future__ import annotations

import platform
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ntire_bench.runner.audit import (RETRIES, DatasetAudit, NotCredible, TimedBlock, choose_probes, noise_buffer,
                                     probe_pool, read_sr)
from ntire_bench.runner.complexity_check import (CHECKED_IMAGES, GraphCheck, ModelProcess, at_traced_size, bare_output,
                                                 counting_worker, keep_graph, verified_complexity, zeros_check)
from ntire_bench.runner.context import Identity, RunContext, wait_until_idle, worker_factory
from ntire_bench.runner.stages import StageTimes
from ntire_bench.data.datasets import PreparedDataset, read_hr
from ntire_bench.data.images import read_image, write_image
from ntire_bench.metrics.quality import image_quality
from ntire_bench.plugins.declaration import PluginEntry, SubmissionInfo
from ntire_bench.results.records import to_plain
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.timing.runtime import TimingSettings, summarize_dataset, summarize_samples


def block_repeats(settings: TimingSettings) -> int:
    """The most repeats one timed block may run: the samples, and in adaptive mode its warm-up too."""
    return settings.repeats + (settings.warmup if settings.mode == "adaptive" else 0)


@dataclass
class PassRecord:
    """What one pass over a dataset produced, kept for the headline and for verification."""

    samples: list[list[float]] = field(default_factory=list)  # per image
    warmups: list[int] = field(default_factory=list)
    stop_reasons: list[str] = field(default_factory=list)
    blocks: list[TimedBlock] = field(default_factory=list)
    noise: np.ndarray | None = None
    peak_memory_mb: float | None = None
    max_threads: int = 0  # the most torch threads the worker reported after a block
    spread: int | None = None  # grey levels between two passes over the first image, when measured

    @property
    def headline(self) -> float:
        return summarize_dataset([summarize_samples(s)["median"] for s in self.samples])["mean"]


def _timed_block(worker: Any, audit: DatasetAudit, numel: int, noise: np.ndarray, sr: np.ndarray, cap: int,
                 rng: np.random.Generator, stages: StageTimes, warmup_cap: int = 0) -> TimedBlock:
    """One image's timed repeats, then the challenge at positions drawn after them; re-timed when the parent's
    clock disagrees or the answer comes late (see audit.RETRIES). ``warmup_cap``: the most warm-up repeats the
    first attempt may hold (a block timed again holds none: the worker's detector has decided)."""
    pool = probe_pool(sr)
    for attempt in range(RETRIES + 1):
        started = time.perf_counter()
        offsets = rng.integers(0, len(noise) - numel, size=cap).tolist()
        timed, observed = worker.request("time", offsets=offsets)
        replied = time.perf_counter()
        probes = choose_probes(sr, rng, pool=pool)  # only now: nothing the worker saw before could tell it where
        gap_ms = (time.perf_counter() - replied) * 1e3
        answer, answer_ms = worker.request("challenge", probes=probes)
        sampled = sum(s for s in timed["samples"] if isinstance(s, (int, float))) / 1e3
        warming = timed.fields.get("leading") if isinstance(timed.fields.get("leading"), int) else 0
        warmed = sum(s for s in timed["samples"][:warming] if isinstance(s, (int, float))) / 1e3
        try:
            return audit.check_block(timed, observed, offsets, probes, answer, answer_ms, sr, numel, gap_ms,
                                     warmup_cap if attempt == 0 else 0)
        except NotCredible as exc:
            if attempt == RETRIES or "replaced the clocks" in str(exc) or "does not match the SR" in str(exc):
                raise
            audit.record.retries += 1
        finally:
            stages.add("warmup", warmed)
            stages.add("timed", sampled - warmed)
            stages.add("audit", time.perf_counter() - started - sampled)
    raise AssertionError("unreachable")


def run_pass(worker: Any, lr_images: Sequence[np.ndarray], scale: int, cap: int, audit: DatasetAudit,
             rng: np.random.Generator, bar: tqdm | None = None,
             on_output: Callable[[int, np.ndarray], None] | None = None,
             check_determinism: bool = False, image_label: Callable[[int], str] = str,
             stages: StageTimes | None = None, target: float | None = None, warmup_cap: int = 0) -> PassRecord:
    """Send every image through ``worker``: quality pass, warm-up and a checked timed block each.

    ``check_determinism``: the first image is passed twice and the outputs compared; once they differ at all,
    every later image is too, so the spread recorded is the largest over the images. ``target``: the adaptive
    target for each image (``RunConfig.image_target``; the worker's settings where None); ``warmup_cap``: the
    most warm-up repeats a block may hold (adaptive timing's cap; fixed timing warms up apart, so 0)."""
    stages = stages if stages is not None else StageTimes()
    noise = noise_buffer(max(int(lr.size) for lr in lr_images), rng)
    noise_path = worker.tmp / "noise.npy"
    np.save(noise_path, noise, allow_pickle=False)
    worker.request("begin_dataset", noise=str(noise_path), target=target)
    record = PassRecord(noise=noise)
    # The parent scores image i while the worker runs image i+1's quality pass and warm-up, and waits for it
    # before the timed block: nothing of the parent's runs beside a timed sample.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ntire-bench-metrics") as pool:
        scoring: Future | None = None
        previous: tuple[int, np.ndarray] | None = None
        for i, lr in enumerate(lr_images):
            lr_path, sr_path = worker.tmp / "lr.npy", worker.tmp / "sr.npy"
            np.save(lr_path, lr, allow_pickle=False)
            if on_output is not None and previous is not None:
                scoring = pool.submit(on_output, *previous)
            try:
                with stages.timing("quality"):
                    look = check_determinism and (i == 0 or bool(record.spread))
                    reply, _ = worker.request("image", input=str(lr_path), output=str(sr_path),
                                              check_determinism=look)
                    sr = read_sr(sr_path, lr.shape, scale)
                # the warm-up passes ran inside the image request, after the quality pass
                stages.move("quality", "warmup",
                            sum(d for d in reply["warmup_ms"] if isinstance(d, (int, float))) / 1e3)
                if scoring is not None:
                    with stages.timing("metrics"):  # only what the run waited for
                        scoring.result()
                    scoring = None
                previous = (i, sr)
                block = _timed_block(worker, audit, int(lr.size), noise, sr, cap, rng, stages, warmup_cap)
            except NotCredible:
                raise
            except WorkerFailure as exc:
                raise WorkerFailure(f"{image_label(i)}: {exc}") from None
            finally:
                lr_path.unlink(missing_ok=True)
            audit.count_responses(block)
            record.samples.append(block.samples)
            record.warmups.append(int(reply["warmup"]) + len(block.warmup_ms))
            if reply["spread"] is not None:
                record.spread = max(record.spread or 0, int(reply["spread"]))
            record.stop_reasons.append(block.stop_reason)
            record.max_threads = max(record.max_threads, block.num_threads)
            record.blocks.append(block)
            if bar is not None:
                bar.update(1)
    if on_output is not None and previous is not None:
        with stages.timing("metrics"):
            on_output(*previous)
    reply, _ = worker.request("end_dataset")
    peak = reply["result"].get("peak_memory_mb") if isinstance(reply["result"], dict) else None
    record.peak_memory_mb = float(peak) if isinstance(peak, (int, float)) else None
    return record


# ---------------------------------------------------------------------------- jobs


@dataclass
class PassJob:
    """One timing pass of one submission over one dataset; plain data an executor can ship anywhere."""

    entry: PluginEntry
    identity: Identity
    dataset: PreparedDataset
    run_index: int
    seed: int
    count_complexity: bool = False
    compute_quality: bool = True
    check_determinism: bool = False


@dataclass
class PassOutcome:
    """What a pass job returns: the timed pass, quality (first pass), the load report and the audit so far."""

    job_dataset: str
    run_index: int
    record: PassRecord
    qualities: list[dict[str, float] | None]
    loaded: dict[str, Any]
    audit: DatasetAudit
    sandbox: Any
    node: dict[str, Any]
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (runner/stages.py)


def _graph_check(worker: Any, name: str, lr: np.ndarray, scored: np.ndarray, info: SubmissionInfo,
                 traced: Sequence[int]) -> GraphCheck:
    """What the graph must reproduce on ``lr``: the scored SR, or, through an inference wrapper, the bare
    model's SR of the image at the traced size."""
    if not info.custom_forward:
        return GraphCheck(name, lr, scored)
    fitted = at_traced_size(lr, traced)
    return GraphCheck(name, fitted, bare_output(worker, fitted, info.scale))


def node_facts(device: str) -> dict[str, Any]:
    """Which machine (and GPU) ran a job: recorded with every result."""
    facts: dict[str, Any] = {"host": platform.node()}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        facts.update(gpu=props.name, gpu_uuid=str(getattr(props, "uuid", "")) or None)
    return facts


def run_pass_job(job: PassJob, ctx: RunContext, progress: bool = False, idle: Sequence[Any] = ()) -> PassOutcome:
    """Start a confined worker, load the submission, run one pass; quality is scored here, never in the worker.

    A pass that counts complexity also has the worker's exported graph counted, and checked against a few of
    this pass's SR images, in a fresh worker (complexity_check.py). ``idle``: workers the caller started ahead
    of their work, waited for (until they are idle) before the first image.
    """
    info = job.entry.info
    assert info is not None
    pairs = job.dataset.pairs
    lr_images = [read_image(pair.lr_path) for pair in pairs]
    qualities: list[dict[str, float] | None] = [None] * len(pairs)
    scale = info.scale
    save_dir = (ctx.config.save_sr / job.entry.name / job.dataset.spec.name
                if ctx.config.save_sr is not None and job.run_index == 0 else None)
    rng = np.random.default_rng(job.seed)
    # Drawn before the pass, known only here: the worker cannot tell which images the graph is checked on.
    checked = set(rng.choice(len(pairs), size=min(CHECKED_IMAGES, len(pairs)), replace=False).tolist()) \
        if job.count_complexity else set()
    kept: dict[int, np.ndarray] = {}

    def score(i: int, sr: np.ndarray) -> None:
        if i in checked:
            kept[i] = sr
        if job.compute_quality:
            hr = read_hr(pairs[i], lr_images[i], scale)
            qualities[i] = image_quality(torch.from_numpy(sr), torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1),
                                         border=scale)
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            write_image(save_dir / f"{pairs[i].name}x{scale}.png", np.ascontiguousarray(sr.transpose(1, 2, 0)))

    log_path = ctx.config.out_dir / "logs" / f"{job.entry.name}.log"
    timing = ctx.config.timing_settings(ctx.device)
    start = worker_factory(job.entry, job.identity, ctx, log_path)
    stages = StageTimes()
    # The counting worker starts beside the model's and imports while that one loads; it, and any helper the
    # caller started (``idle``), wait on their pipes before the first image: nothing of theirs runs beside a timing.
    counter = counting_worker(ctx) if job.count_complexity else None
    try:
        with stages.timing("process"):
            worker, loaded = start(job.count_complexity)
        try:
            with stages.timing("process"):
                wait_until_idle([*idle, *([counter] if counter is not None else [])])
        except BaseException:
            worker.close()
            raise
    except BaseException:
        if counter is not None:
            counter.close()
        raise
    durations = loaded.get("durations") if isinstance(loaded.get("durations"), dict) else {}
    for stage in ("load", "complexity"):  # inside the load request, by the worker's clock
        if isinstance(durations.get(stage), (int, float)):
            stages.move("process", stage, durations[stage])
    audit = DatasetAudit(info.data_range)
    label = f"{job.entry.name} · {job.dataset.spec.name}" + (f" · pass {job.run_index + 1}" if job.run_index else "")
    with tempfile.TemporaryDirectory(prefix="ntire-bench-graph-") as scratch:
        try:
            graph = keep_graph(worker, loaded.get("complexity"), Path(scratch))
            with tqdm(total=len(pairs), desc=label, unit="img", disable=not progress, leave=False) as bar:
                record = run_pass(worker, lr_images, scale, block_repeats(timing), audit,
                                  rng, bar, on_output=score, check_determinism=job.check_determinism,
                                  image_label=lambda i: f"{job.dataset.spec.name}/{pairs[i].name}", stages=stages,
                                  target=ctx.config.image_target(ctx.device, len(pairs)),
                                  warmup_cap=block_repeats(timing) - timing.repeats)
            if job.count_complexity and loaded.get("complexity") is not None:
                if not isinstance(loaded["complexity"], dict):
                    raise WorkerFailure("the worker's complexity report is malformed: not a mapping")
                # The model's worker stays open, idle, while the graph is counted: only it can measure a real
                # forward where the graph cannot tell.
                checks = [_graph_check(worker, f"{job.dataset.spec.name}/{pairs[i].name}", lr_images[i], kept[i],
                                       info, ctx.config.complexity_size) for i in sorted(kept)]
                if loaded["complexity"].get("zeros_graph"):  # its path depends on the input: traced on each
                    checks.append(zeros_check(worker, info, ctx.config.complexity_size))
                with stages.timing("complexity"):
                    complexity = verified_complexity(loaded["complexity"], graph, checks, info, ctx,
                                                     ctx.config.flop_convention, job.identity.checkpoint,
                                                     record.spread, ModelProcess(worker, ctx.config.complexity_size),
                                                     counter)
                loaded = {**loaded, "complexity": to_plain(complexity)}
        except WorkerFailure as exc:  # the record of a failure still says how the submission was confined
            exc.sandbox = worker.sandbox_info  # type: ignore[attr-defined]
            raise
        finally:
            with stages.timing("process"):
                worker.close()
                if counter is not None:
                    counter.close()  # where it was not needed
    return PassOutcome(job.dataset.spec.name, job.run_index, record, qualities, loaded, audit,
                       worker.sandbox_info, node_facts(ctx.device), stages.to_dict())
