"""Running a benchmark on a Ray cluster: the local executor's jobs, spread over many machines.

``RayExecutor`` submits every timing pass of every submission at once as Ray tasks, collects
them as they finish and records each submission through the runner's own steps
(``plan_submission``, ``record_dataset``, ``record_verification``, ``finish``), on the driver
only, so resume, set-aside and the record format are the local executor's.

What keeps the numbers trustworthy (docs/ray.md):

- Exclusive, identical hardware. A job holds one whole GPU (``num_gpus=1``) plus a custom
  resource that pins the GPU model (``ntire_bench_gpu:NVIDIA_RTX_A6000``), or on CPU the
  ``ntire_bench_node`` resource that each node advertises once, so two jobs never share a GPU
  or a CPU machine. Verification jobs hold the same: they must reproduce float outputs on the
  same hardware class, and beside a timed job they would disturb it.
- The same trust boundary on every node: a Ray task is the trusted harness process, which
  starts the submission in its isolated child exactly as locally. HR is read from the shared
  dataset path by the task, never by the child; the task checks that its copy of every
  dataset has the driver's fingerprint and that it runs the driver's harness code.
- Faults: a task whose worker or node dies is retried by Ray (``max_retries``); every attempt
  registers with a ledger actor on the driver's node, so each retry (attempt, node, pid,
  reason) is recorded in ``environment.executor``. A job Ray gives up on fails its submission
  with the reason; a submission's own failure (crash, timeout, implausible timing) is never
  retried, as locally.

Only this module and ray_node.py (what runs on a node) import ``ray``, and only when used:
``pip install 'ntire-bench[ray]'``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from ntire_bench.runner.context import RunConfig, RunContext
from ntire_bench.data.datasets import PreparedDataset
from ntire_bench.runner.context import hidden_paths
from ntire_bench.results.provenance import harness_fingerprint, telemetry_warnings
from ntire_bench.runner.passes import PassOutcome
from ntire_bench.runner.verify import VerifyCandidate, VerifyJob
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.cluster.node import (CPU_NODE_RESOURCE, DEFAULT_MAX_RETRIES, GPU_MODEL_PREFIX, AttemptLedger, JobReport, RaySetupError, gpu_model_resource, import_ray, node_log, node_resources, probe_node, run_on_node, timed_options)
from ntire_bench.results.records import SubmissionResult
from ntire_bench.runner.evaluation import (SubmissionPlan, dependency_digests, finish, pass_jobs, plan_submission, record_dataset, record_verification)
from ntire_bench.results.store import ResultsStore
from ntire_bench.util.text import one_line


# ------------------------------------------------------------------- the driver


@dataclass
class _Submission:
    """One submission's progress on the driver."""

    index: int
    plan: SubmissionPlan
    outcomes: dict[int, dict[int, PassOutcome]] = field(default_factory=dict)  # dataset index -> run -> outcome
    recorded: int = 0  # datasets recorded, in order
    candidates: list[VerifyCandidate] = field(default_factory=list)
    refs: list[Any] = field(default_factory=list)
    done: bool = False


class RayExecutor:
    """Runs a benchmark's jobs on a Ray cluster (see the module docstring for the guarantees).

    ``address``: None starts a local Ray instance (unless ``RAY_ADDRESS`` names a cluster, as
    under ``ray job submit``), ``"auto"`` joins the cluster running on this machine, or
    ``"HOST:PORT"``. ``gpu_model`` pins CUDA jobs to one GPU model [default: the driver's GPU,
    else the only model the cluster advertises]. ``init_options`` go to ``ray.init``.
    """

    def __init__(self, address: str | None = None, gpu_model: str | None = None,
                 max_retries: int = DEFAULT_MAX_RETRIES, init_options: dict[str, Any] | None = None):
        if importlib.util.find_spec("ray") is None:
            raise RaySetupError("--executor ray needs Ray: pip install 'ntire-bench[ray]' (on every node)")
        if max_retries < 0:
            raise RaySetupError(f"max_retries must be 0 or more, got {max_retries}")
        self.address = address
        self.gpu_model = gpu_model
        self.max_retries = max_retries
        self.init_options = dict(init_options or {})
        self._started = False
        self._ledger: Any = None
        self._lock = threading.Lock()

    # -- connection

    def connect(self) -> Any:
        """Join (or start) the Ray cluster; return the ``ray`` module."""
        ray = import_ray()
        if ray.is_initialized():
            return ray
        address = self.address or os.environ.get("RAY_ADDRESS")
        options = {"logging_level": logging.WARNING, **self.init_options}
        try:
            if address:
                ray.init(address=address, **options)
            else:
                os.environ.setdefault("RAY_worker_niceness", "0")  # timed jobs must not yield (see _renice)
                ray.init(address="local", resources=node_resources(), include_dashboard=False, **options)
                self._started = True
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--ray-address {address}" if address else "a local Ray instance"
            hint = ("start one with `ray start --head` or leave --ray-address out to start a local instance"
                    if address else "see docs/ray.md")
            raise RaySetupError(f"{where}: {one_line(exc, with_type=False)[:300]}; {hint}") from None
        return ray

    def close(self) -> None:
        """Shut down the Ray instance this executor started (a cluster it joined stays up)."""
        if self._ledger is not None:
            ray = import_ray()
            if ray.is_initialized():
                ray.kill(self._ledger)
            self._ledger = None
        if self._started:
            import_ray().shutdown()
            self._started = False

    def _ledger_actor(self, ray: Any) -> Any:
        with self._lock:  # ``attempts`` may be asked from another thread while a run starts
            if self._ledger is None:
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
                self._ledger = ray.remote(num_cpus=0)(AttemptLedger).options(scheduling_strategy=here).remote()
            return self._ledger

    # -- placement

    def cluster_device(self, requested: str) -> str:
        """The run's device on the cluster: ``cpu`` or ``cuda:0`` (the one whole GPU each job is given)."""
        requested = (requested or "auto").lower()
        gpus = self.connect().cluster_resources().get("GPU", 0)
        if requested.startswith("cuda:") and requested != "cuda:0":
            raise RaySetupError(f"--device {requested} picks a GPU of this machine; with --executor ray every job "
                                "gets one whole GPU from Ray: pass --device cuda")
        if requested in ("cuda", "cuda:0") or (requested == "auto" and gpus):
            if not gpus:
                raise RaySetupError(f"--device {requested}: no node of the Ray cluster has a GPU; use --device cpu")
            return "cuda:0"
        if requested in ("auto", "cpu"):
            return "cpu"
        raise RaySetupError(f"--device {requested}: expected auto, cpu, cuda or cuda:N")

    def pinned_gpu_model(self, device: str) -> str | None:
        """The GPU model every CUDA job is pinned to (None on CPU), checked against what the cluster advertises."""
        resources = self.connect().cluster_resources()
        if not device.startswith("cuda"):
            if self.gpu_model:
                raise RaySetupError("--ray-gpu-model applies to CUDA runs; drop it or pass --device cuda")
            if not resources.get(CPU_NODE_RESOURCE):
                raise RaySetupError(f"no node of the Ray cluster advertises the {CPU_NODE_RESOURCE} resource; start "
                                    f"each node with ray start --resources '{{\"{CPU_NODE_RESOURCE}\": 1}}' "
                                    "(docs/ray.md)")
            return None
        offered = sorted(k for k in resources if k.startswith(GPU_MODEL_PREFIX))
        model = self.gpu_model
        if model is None:
            import torch

            if torch.cuda.is_available():
                model = torch.cuda.get_device_name(0)
            elif len(offered) == 1:
                model = offered[0][len(GPU_MODEL_PREFIX):]
            elif offered:
                raise RaySetupError(f"the Ray cluster offers several GPU models ({', '.join(offered)}); pick one with "
                                    "--ray-gpu-model NAME: one leaderboard never mixes GPU models")
        key = gpu_model_resource(model) if model else None
        if key is None or key not in resources:
            raise RaySetupError(
                f"no node of the Ray cluster advertises {key or GPU_MODEL_PREFIX + '<MODEL>'} (offered: "
                f"{', '.join(offered) or 'none'}); start GPU nodes with ray start --resources "
                "\"$(python -m ntire_bench.cluster)\" (docs/ray.md)")
        return model

    def attempts(self, key: str) -> list[dict[str, Any]]:
        """Every attempt so far of the job ``key`` (``<submission>/<dataset> pass <n>`` or ``<submission>/verify``)
        in the run under way: host, Ray node, worker pid and start time of each, in order."""
        ray = self.connect()
        return ray.get(self._ledger_actor(ray).attempts.remote(key))

    # -- the whole run

    def evaluate(self, entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset], config: RunConfig,
                 seed: int) -> list[SubmissionResult]:
        """Evaluate every submission on every dataset on the cluster; the driver records everything."""
        ray = self.connect()
        try:
            device = self.cluster_device(config.device)
            model = self.pinned_gpu_model(device)
            options = timed_options(device, model)
            node_config = replace(config, log=node_log, progress=False)
            probe = ray.remote(probe_node).options(max_retries=self.max_retries, **options)
            try:
                device, environment, settings, facts = ray.get(probe.remote(node_config, device))
            except ray.exceptions.RayError as exc:
                raise RaySetupError(f"the first job on the Ray cluster failed ({_ray_error_line(exc)}); "
                                    "see docs/ray.md for what each node needs") from None
            if environment.harness_fingerprint != harness_fingerprint():
                raise RaySetupError(f"node {facts.get('host')} runs other ntire-bench code than this driver; install "
                                    "the same version on every node")
            if model is not None and gpu_model_resource(environment.device_name or "") != gpu_model_resource(model):
                raise RaySetupError(f"node {facts.get('host')} advertises {gpu_model_resource(model)} but its GPU is "
                                    f"{environment.device_name}; fix that node's ray start --resources")
            # The probe's own host and GPU say nothing about where jobs ran: each job records its own.
            environment.host = None
            if environment.gpu:
                environment.gpu = {k: v for k, v in environment.gpu.items() if k not in ("uuid", "nvml_uuid")}
            ctx = RunContext(config, device, environment, settings, ResultsStore(config.out_dir),
                             hidden_paths([d.spec for d in datasets], config.out_dir))
            header = {"name": "ray", "address": self.address or os.environ.get("RAY_ADDRESS") or "local",
                      "job_resources": options, "max_retries": self.max_retries}
            return _ClusterRun(ray, self, ctx, options, seed, header).run(entries, datasets)
        finally:
            self.close()


class _ClusterRun:
    """One run's jobs in flight: submitted at once, recorded in order as they finish."""

    def __init__(self, ray: Any, executor: RayExecutor, ctx: RunContext, options: dict[str, Any], seed: int,
                 header: dict[str, Any]):
        self.ray, self.ctx, self.seed, self.header = ray, ctx, seed, header
        # Shipped once to the object store; every task reads the same copy.
        self.node_ctx = ray.put(replace(ctx, config=replace(ctx.config, log=node_log, progress=False)))
        self.ledger = executor._ledger_actor(ray)
        self.task = ray.remote(run_on_node).options(max_retries=executor.max_retries, retry_exceptions=False,
                                                     **options)
        self.pending: dict[Any, tuple[_Submission, str, str, tuple[int, int]]] = {}
        self.nodes_seen: set[str] = set()
        self.retries = 0

    def run(self, entries: Sequence[PluginEntry], datasets: Sequence[PreparedDataset]) -> list[SubmissionResult]:
        results: dict[int, SubmissionResult] = {}
        states: list[_Submission] = []
        for index, entry in enumerate(entries):
            plan = plan_submission(entry, datasets, self.ctx)
            if isinstance(plan, SubmissionResult):
                results[index] = plan
                continue
            plan.record.environment.executor = dict(self.header)
            state = _Submission(index, plan)
            states.append(state)
            for d_index, dataset in enumerate(plan.todo):
                for job in pass_jobs(plan, dataset, d_index, self.ctx, self.seed):
                    label = f"{dataset.spec.name} pass {job.run_index + 1}"
                    self._submit(state, "pass", job, label, (d_index, job.run_index))
            if not plan.todo:
                self._verify_or_finish(state)
        while self.pending:
            ready, _ = self.ray.wait(list(self.pending), num_returns=1)
            self._collect(ready[0])
        for state in states:
            results[state.index] = state.plan.record
        if self.retries:
            self.ctx.config.log(f"ray: {self.retries} job attempt(s) lost with their worker or node were retried "
                                "(recorded in environment.executor.retries)")
        return [results[i] for i in range(len(entries))]

    def _submit(self, state: _Submission, kind: str, job: Any, label: str, slot: tuple[int, int]) -> None:
        key = f"{state.plan.entry.name}/{label}"
        ref = self.task.remote(kind, job, self.node_ctx, key, self.ledger)
        self.pending[ref] = (state, kind, label, slot)
        state.refs.append(ref)

    def _collect(self, ref: Any) -> None:
        state, kind, label, slot = self.pending.pop(ref)
        if state.done:  # its submission already failed; this job's outcome is not needed
            return
        key = f"{state.plan.entry.name}/{label}"
        try:
            report: JobReport | None = self.ray.get(ref)
            lost_reason = None
        except self.ray.exceptions.RayError as exc:
            report, lost_reason = None, _ray_error_line(exc)
        attempts = self.ray.get(self.ledger.attempts.remote(key))
        final = report.attempt if report is not None else len(attempts) + 1
        retries = [self._retry(label, number, facts) for number, facts in enumerate(attempts[: final - 1], 1)]
        record = state.plan.record
        if report is None:
            self._note(record, retries=retries)
            self._fail(state, f"{label}: Ray gave up after {len(attempts)} attempt(s): {lost_reason}")
            return
        self._append_log(state.plan.entry.name, report.log)
        job = {"job": label, **{k: v for k, v in report.facts.items() if k not in ("telemetry", "dependencies")},
               "attempts": report.attempt, "seconds": round(report.seconds, 3)}
        self.nodes_seen.add(str(report.facts.get("ray_node")))
        if report.facts.get("niceness"):
            record.warnings = list(dict.fromkeys(record.warnings + [
                f"{label} ran at niceness {report.facts['niceness']} on {report.facts.get('host')}: other processes of "
                "the node took precedence over its timing; start Ray there with RAY_worker_niceness=0 (docs/ray.md)"]))
        telemetry = report.facts.get("telemetry")
        if telemetry:
            job["telemetry"] = telemetry
            record.warnings = list(dict.fromkeys(record.warnings + telemetry_warnings(telemetry["start"],
                                                                                      telemetry["end"])))
        if report.failure is None and kind == "pass":
            stale = stale_dependency(report.facts.get("dependencies") or {})
            if stale:
                report.failure = (f"{label}: node {report.facts.get('host')} imported another copy of {stale} than the "
                                  "driver has; every node must see the same files at the same paths (docs/ray.md)")
        if report.failure is not None:
            self._note(record, jobs=[job], retries=retries)
            self._fail(state, report.failure)
            return
        if kind == "verify":
            self._note(record, jobs=[job], retries=retries)
            record_verification(state.plan, state.candidates, float(report.value), self.ctx)
            self._finish(state)
            return
        outcome: PassOutcome = report.value
        outcome.node = {**outcome.node, "jobs": [job], "retries": retries}
        d_index, run_index = slot
        state.outcomes.setdefault(d_index, {})[run_index] = outcome
        self._record_ready(state)

    def _retry(self, label: str, number: int, facts: dict[str, Any]) -> dict[str, Any]:
        alive = {n["NodeID"]: n["Alive"] for n in self.ray.nodes()}
        lost = "its node died" if not alive.get(facts.get("ray_node"), True) else "its Ray worker process died"
        self.retries += 1
        self.ctx.config.log(f"{label}: attempt {number} on {facts.get('host')} (pid {facts.get('pid')}) was lost "
                            f"({lost}); Ray retried it")
        return {"job": label, "attempt": number, "host": facts.get("host"), "ray_node": facts.get("ray_node"),
                "pid": facts.get("pid"), "started": facts.get("started"),
                "reason": f"the job did not complete: {lost}"}

    @staticmethod
    def _note(record: SubmissionResult, jobs: list[dict] = (), retries: list[dict] = ()) -> None:
        note = dict(record.environment.executor or {})
        for key, items in (("jobs", jobs), ("retries", retries)):
            if items:
                note[key] = [*note.get(key, []), *items]
        record.environment.executor = note

    def _append_log(self, name: str, log: bytes) -> None:
        """The node's worker log, appended where a local run writes it (created even when empty, as locally)."""
        path = self.ctx.config.out_dir / "logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as fh:
            fh.write(log)

    def _record_ready(self, state: _Submission) -> None:
        """Record every dataset whose passes are all in, in order (as the local executor does)."""
        plan = state.plan
        while state.recorded < len(plan.todo):
            runs = state.outcomes.get(state.recorded, {})
            if len(runs) < self.ctx.config.runs:
                return
            try:
                state.candidates += record_dataset(plan, plan.todo[state.recorded], [runs[r] for r in sorted(runs)],
                                                   self.ctx, self.seed)
            except WorkerFailure as exc:
                self._fail(state, str(exc))
                return
            state.recorded += 1
        self._verify_or_finish(state)

    def _verify_or_finish(self, state: _Submission) -> None:
        if state.candidates:
            job = VerifyJob(state.plan.entry, state.plan.identity, state.candidates)
            self._submit(state, "verify", job, "verify", (-1, -1))
            return
        record_verification(state.plan, [], None, self.ctx)
        self._finish(state)

    def _finish(self, state: _Submission) -> None:
        state.done = True
        finish(state.plan.record, self.ctx)

    def _fail(self, state: _Submission, reason: str) -> None:
        """The submission failed: cancel its other jobs (others are unaffected) and record the reason."""
        state.done = True
        for ref in state.refs:
            if ref in self.pending:
                del self.pending[ref]
                self.ray.cancel(ref)
        finish(state.plan.record, self.ctx, failure=reason)


def stale_dependency(node_digests: dict[str, str]) -> str | None:
    """A module the node's worker imported whose bytes differ from the driver's file at that path, or None."""
    for path, digest in sorted(node_digests.items()):
        if dependency_digests([path]).get(path) != digest:
            return path
    return None


def _ray_error_line(exc: BaseException) -> str:
    """One line from a Ray error: its type and the last meaningful line of its message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else 'no detail'}"[:400]
