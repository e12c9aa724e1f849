"""Evaluating submissions on datasets: the parent side of every run.

The parent owns the datasets, the HR images, the metrics and the results store. Each timing
pass runs a submission in its own confined worker (measure.py) that only ever sees LR pixels.
One submission's story, as named steps: ``plan_submission`` (what identifies the measurement,
what the store can re-use), ``pass_jobs`` (what is left to measure), ``record_dataset`` (each
dataset's result, saved at once), ``record_verification`` (timed outputs recomputed afresh) and
``finish`` (the status). ``run_benchmark`` hands them to an ``Executor``: ``LocalExecutor`` runs the
jobs here, one after another; ``cluster.executor.RayExecutor`` spreads the same jobs over a cluster.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ntire_bench.runner.audit import verify_tolerance
from ntire_bench.runner.context import Identity, RunConfig, RunContext
from ntire_bench.data.datasets import PreparedDataset
from ntire_bench.runner.context import hidden_paths
from ntire_bench.results.provenance import collect_environment, gpu_telemetry, resolve_device, telemetry_warnings
from ntire_bench.runner.passes import PassJob, PassOutcome, run_pass_job
from ntire_bench.runner.stages import StageTimes
from ntire_bench.runner.verify import VerifyCandidate, VerifyJob, pick_candidates, run_verify_job, verify_worker
from ntire_bench.runner.assembly import assemble_dataset
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.plugins.checkpoints import model_zoo_dirs, resolve_checkpoint
from ntire_bench.util.hashing import sha256_file
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.results.records import (FAILED, NO_WEIGHTS, OK, RUNNING, CheckpointInfo, ComplexityResult, PluginInfo, RecordError, SubmissionResult, from_plain)
from ntire_bench.results.store import ResultsStore


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def make_context(config: RunConfig, datasets: Sequence[PreparedDataset]) -> RunContext:
    """Resolve the device and collect the environment once for the whole run."""
    device = resolve_device(config.device)
    threads = config.threads_for(device)
    environment = collect_environment(device, threads)
    environment.cpu_affinity = config.cores_for(device)
    return RunContext(config, device, environment, config.settings(device), ResultsStore(config.out_dir),
                      hidden_paths([d.spec for d in datasets], config.out_dir))


def job_seed(base: int, *parts: Any) -> int:
    """A per-job seed of the parent's noise and probe choices, from the run's seed and the job's identity."""
    return int.from_bytes(hashlib.sha256(json.dumps([base, *map(str, parts)]).encode()).digest()[:8], "little")


class Executor(Protocol):
    """Runs a benchmark: measures every submission and records each through this module's steps
    (``plan_submission``, ``pass_jobs``, ``record_dataset``, ``record_verification``, ``finish``), so
    resume, set-aside and the record format are the same wherever the jobs run."""

    def evaluate(self, entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset], config: RunConfig,
                 seed: int) -> list[SubmissionResult]: ...


class LocalExecutor:
    """This machine, one job after another (the default: no cluster needed)."""

    def evaluate(self, entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset], config: RunConfig,
                 seed: int) -> list[SubmissionResult]:
        ctx = make_context(config, datasets)
        return [evaluate_submission(entry, datasets, ctx, seed) for entry in entries]


def run_benchmark(entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset], config: RunConfig,
                  executor: Executor | None = None) -> list[SubmissionResult]:
    """Evaluate every submission on every dataset; return the results (also in the store)."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    seed = config.seed if config.seed is not None else secrets.randbits(63)
    return (executor or LocalExecutor()).evaluate(entries, datasets, config, seed)


# ------------------------------------------------------------------ one submission


@dataclass
class SubmissionPlan:
    """A submission ready to measure: its identity, its record (status ``running``) and the datasets left."""

    entry: PluginEntry
    identity: Identity
    record: SubmissionResult
    todo: list[PreparedDataset]
    missing_weights: bool


def evaluate_submission(entry: PluginEntry, datasets: Sequence[PreparedDataset], ctx: RunContext,
                        seed: int = 0) -> SubmissionResult:
    """Plan, measure, verify and record one submission on this machine."""
    plan = plan_submission(entry, datasets, ctx)
    if isinstance(plan, SubmissionResult):
        return plan
    telemetry = gpu_telemetry(_gpu_uuid(ctx)) if ctx.device.startswith("cuda") else None
    candidates: list[VerifyCandidate] = []
    # The verifying worker starts beside the first pass's and imports while that one loads; it then waits, idle,
    # never sent anything, until the passes are over.
    verifier = verify_worker(plan.entry, plan.identity, ctx) if plan.todo and ctx.config.verify \
        and ctx.config.isolate else None
    try:
        for index, dataset in enumerate(plan.todo):
            outcomes = [run_pass_job(job, ctx, progress=ctx.config.progress,
                                     idle=[verifier] if verifier is not None and index == run == 0 else [])
                        for run, job in enumerate(pass_jobs(plan, dataset, index, ctx, seed))]
            candidates += record_dataset(plan, dataset, outcomes, ctx, seed)
        tolerance = verify_tolerance(plan.record.output_spread)
        started = time.perf_counter()
        worst = run_verify_job(VerifyJob(plan.entry, plan.identity, candidates, tolerance), ctx, verifier) \
            if candidates else None
        record_verification(plan, candidates, worst, ctx, time.perf_counter() - started if candidates else 0.0)
    except WorkerFailure as exc:
        if plan.record.sandbox is None:
            plan.record.sandbox = getattr(exc, "sandbox", None)
        return finish(plan.record, ctx, failure=str(exc), telemetry_start=telemetry)
    finally:
        if verifier is not None:
            verifier.close()  # where it was not needed (a second close does nothing)
    return finish(plan.record, ctx, telemetry_start=telemetry)


def plan_submission(entry: PluginEntry, datasets: Sequence[PreparedDataset], ctx: RunContext
                    ) -> SubmissionPlan | SubmissionResult:
    """What to measure for ``entry``, or its final record when there is nothing to measure (up to date,
    or a plugin that could not be read). Files that must make way are set aside first, never lost."""
    identity = measurement_identity(entry, datasets, ctx)
    plan = ctx.store.plan(entry.name, identity.run_key, identity.dataset_keys, ctx.config.force,
                          dependencies_changed=changed_dependencies)
    if not entry.ok and plan.set_aside is None and ctx.store.path(entry.name).exists():
        plan.set_aside = f"{entry.name}.json is replaced by a failed import of {Path(entry.source).name}"
    if plan.set_aside:
        moved = ctx.store.set_aside(entry.name, plan.set_aside, plan.set_aside_label)
        if moved is not None:
            ctx.config.log(f"note: {moved.line()}")
    if plan.up_to_date is not None:
        ctx.config.log(f"{entry.name}: up to date in {ctx.store.path(entry.name)} (use --force to re-measure)")
        return plan.up_to_date
    record = new_record(entry, identity, plan.reuse, ctx)
    record.stages = StageTimes().to_dict()  # this run's, whatever a resumed record held
    if not entry.ok:
        return finish(record, ctx, failure=entry.error or "the plugin could not be read")
    info = entry.info
    assert info is not None
    missing_weights = info.requires_weights and identity.checkpoint is None
    if missing_weights:  # measured all the same; ``finish`` settles the status as no_weights
        zoo = ", ".join(map(str, model_zoo_dirs(ctx.config.model_zoo))) or "none given"
        where = f"in {info.code_root}" if info.kind == "ntire-team" else f"in the model zoo: {zoo}"
        record.error = f"checkpoint {info.checkpoint} not found ({where}); pass --model-zoo DIR for a PSNR rank"
    ctx.store.save(record)
    return SubmissionPlan(entry, identity, record, [d for d in datasets if d.spec.name in plan.todo],
                          missing_weights)


def measurement_identity(entry: PluginEntry, datasets: Sequence[PreparedDataset], ctx: RunContext) -> Identity:
    """The run key (code, declaration, weights, harness, device, settings) and one key per dataset."""
    info = entry.info
    base = Path(info.code_root) if info and info.kind == "ntire-team" and info.code_root else None
    checkpoint = resolve_checkpoint(info.checkpoint, model_zoo_dirs(ctx.config.model_zoo), base) if info else None
    checkpoint_sha = sha256_file(checkpoint) if checkpoint else None
    run_key = _digest({
        "name": entry.name, "plugin": entry.source_sha256, "declaration": info.to_dict() if info else None,
        "checkpoint": checkpoint_sha, "harness": ctx.environment.harness_fingerprint,
        "device": ctx.environment.device_name, "settings": ctx.settings,
    })
    keys = {d.spec.name: _digest({"run": run_key, "files": d.fingerprint, "scale": d.spec.scale}) for d in datasets}
    return Identity(run_key, keys, checkpoint, checkpoint_sha)


def changed_dependencies(stored: SubmissionResult) -> str | None:
    """Why a stored result is stale because a module it imported has changed since, or None."""
    for path, digest in (stored.plugin.dependencies if stored.plugin else {}).items():
        try:
            current = sha256_file(path)
        except OSError:
            return f"{path}, which it imported, is gone"
        if current != digest:
            return f"{Path(path).name}, which it imported, has changed"
    return None


def new_record(entry: PluginEntry, identity: Identity, reuse: dict, ctx: RunContext) -> SubmissionResult:
    """The record for this run, status ``running`` until it finishes, with the datasets it re-uses."""
    info = entry.info
    checkpoint = None
    if info is not None and info.checkpoint:
        checkpoint = CheckpointInfo(file=info.checkpoint, path=str(identity.checkpoint) if identity.checkpoint else None,
                                    sha256=identity.checkpoint_sha256)
    return SubmissionResult(
        submission=entry.name, status=RUNNING, team=info.team if info else None,
        reference=info.reference if info else False, data_range=info.data_range if info else None,
        checkpoint=checkpoint, plugin=PluginInfo(source=entry.source, sha256=entry.source_sha256),
        datasets=dict(reuse), settings=ctx.settings, environment=replace(ctx.environment), run_key=identity.run_key,
    )


def pass_jobs(plan: SubmissionPlan, dataset: PreparedDataset, index: int, ctx: RunContext, seed: int
              ) -> list[PassJob]:
    """The ``--runs`` timing passes of one dataset; the very first job also counts complexity."""
    return [PassJob(plan.entry, plan.identity, dataset, run_index,
                    seed=job_seed(seed, plan.entry.name, dataset.spec.name, run_index),
                    count_complexity=index == 0 and run_index == 0 and plan.record.complexity is None,
                    compute_quality=run_index == 0 and not plan.missing_weights and ctx.config.score_quality,
                    # the first dataset's first pass looks; once a spread is known, every dataset's does
                    check_determinism=run_index == 0 and (index == 0 or plan.record.nondeterministic))
            for run_index in range(ctx.config.runs)]


def record_dataset(plan: SubmissionPlan, dataset: PreparedDataset, outcomes: Sequence[PassOutcome],
                   ctx: RunContext, seed: int) -> list[VerifyCandidate]:
    """Store one dataset's result from its passes; return the repeats to verify in a fresh process."""
    for outcome in outcomes:
        if outcome.loaded.get("complexity") is not None or plan.record.sandbox is None:
            apply_load_report(plan.record, outcome.loaded, outcome.sandbox)
        plan.record.environment.executor = _executor_note(plan.record.environment.executor, outcome)
    totals = StageTimes(plan.record.stages)
    for outcome in outcomes:
        totals.merge(outcome.stages)
    plan.record.stages = totals.to_dict()
    spreads = [o.record.spread for o in outcomes if o.record.spread is not None]
    if spreads:
        plan.record.output_spread = max([*spreads, plan.record.output_spread or 0])
    raised = max(o.record.max_threads for o in outcomes)
    if ctx.settings.threads and raised > ctx.settings.threads:
        note = (f"the submission raised torch's thread count to {raised} (the run gives it {ctx.settings.threads}); "
                f"pinned to cores {ctx.environment.cpu_affinity}, it gained nothing")
        plan.record.warnings = list(dict.fromkeys([*plan.record.warnings, note]))
    result = assemble_dataset(dataset, outcomes, plan.identity.dataset_keys[dataset.spec.name])
    if result.runtime_ms is not None and ctx.settings.timing == "adaptive":
        result.runtime_ms.target = ctx.config.image_target(ctx.device, len(dataset.pairs))
    plan.record.datasets[dataset.spec.name] = result
    ctx.store.save(plan.record)
    if not (ctx.config.verify and ctx.config.isolate):
        return []
    return pick_candidates(dataset, outcomes, np.random.default_rng(job_seed(seed, plan.entry.name, "verify",
                                                                             dataset.spec.name)))


def _executor_note(previous: dict[str, Any] | None, outcome: PassOutcome) -> dict[str, Any]:
    """The record's executor facts with one more pass: every host so far and, from a cluster, its jobs and retries."""
    note = dict(previous or {})
    note["nodes"] = sorted({*note.get("nodes", []), outcome.node.get("host", "?")})
    for key in ("jobs", "retries"):
        if outcome.node.get(key):
            note[key] = [*note.get(key, []), *outcome.node[key]]
    return note


def record_verification(plan: SubmissionPlan, candidates: list[VerifyCandidate], worst: float | None,
                        ctx: RunContext, seconds: float = 0.0) -> None:
    """Record what recomputing some timed repeats in a fresh worker found: ``worst`` is the largest difference
    (fraction of white) over ``candidates``, None when nothing was recomputed; ``seconds`` it took."""
    plan.record.stages = {**plan.record.stages,
                          "verification": round(plan.record.stages.get("verification", 0.0) + seconds, 6)}
    if not candidates:
        if plan.todo and not ctx.config.isolate:
            plan.record.warnings.append("timed outputs were not recomputed in a fresh process (--no-isolation)")
        return
    for dataset in plan.todo:
        audit = plan.record.datasets[dataset.spec.name].timing_audit
        if audit is not None:
            count = sum(1 for c in candidates if c.dataset == dataset.spec.name)
            audit.verified = (f"{count} timed repeats recomputed in a fresh process: largest difference "
                              f"{worst * 255:.2g} grey levels (tolerance {verify_tolerance(plan.record.output_spread) * 255:.2g})")
    ctx.store.save(plan.record)


def apply_load_report(record: SubmissionResult, loaded: dict[str, Any], sandbox: Any) -> None:
    """Copy what a worker reported at load time into the record (complexity, warnings, dependencies)."""
    complexity = loaded.get("complexity")
    if complexity is not None:
        try:
            record.complexity = from_plain(ComplexityResult, complexity, "complexity")
        except RecordError as exc:
            raise WorkerFailure(f"the worker's complexity report is malformed: {exc}") from None
    record.environment.threads = int(loaded.get("num_threads") or 0) or record.environment.threads
    record.warnings = list(dict.fromkeys(record.warnings + [str(w) for w in loaded.get("warnings", [])]))
    record.opt_ins = sorted({*record.opt_ins, *(str(o) for o in loaded.get("opt_ins", []))})
    if record.checkpoint is not None:
        record.checkpoint.trusted_pickle = "trust_pickle" in record.opt_ins
    record.sandbox = sandbox
    if record.plugin is not None:
        record.plugin.dependencies = {**record.plugin.dependencies,
                                      **dependency_digests(loaded.get("dependencies", []))}


def dependency_digests(paths: Sequence[Any]) -> dict[str, str]:
    """``{path: sha256}`` of the Python files a worker reported importing from outside site-packages."""
    digests = {}
    for path in paths:
        candidate = Path(str(path))
        if candidate.suffix == ".py" and candidate.is_file() and candidate.stat().st_size < 50 * 2**20:
            digests[str(candidate)] = sha256_file(candidate)
    return digests


def finish(record: SubmissionResult, ctx: RunContext, failure: str | None = None,
           telemetry_start: dict | None = None) -> SubmissionResult:
    """Settle the status, attach telemetry and stability warnings, and save."""
    if failure is not None:
        record.status, record.error = FAILED, failure
        ctx.config.log(f"{record.submission}: failed: {failure}")
    elif record.status == RUNNING:
        record.status = NO_WEIGHTS if record.error else OK
    if telemetry_start is not None:
        end = gpu_telemetry(_gpu_uuid(ctx))
        record.environment.gpu_telemetry = {"start": telemetry_start, "end": end}
        record.warnings.extend(telemetry_warnings(telemetry_start, end))
    for name, result in record.datasets.items():
        runtime = result.runtime_ms
        if runtime is not None and runtime.unstable and runtime.run_cv is not None:
            record.warnings.append(f"{name}: runtime varies by {runtime.run_cv:.1%} between passes (>2%); "
                                   "results are unstable, quiet the machine and re-run")
    ctx.store.save(record)
    return record


def _gpu_uuid(ctx: RunContext) -> str | None:
    return (ctx.environment.gpu or {}).get("uuid")


# --------------------------------------------------------------------------- bench


