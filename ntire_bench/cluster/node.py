"""The Ray side of a node: what a machine advertises, and the task that runs one job there.

A job's task is the node's trusted harness process (see ray_executor.py for the driver and
docs/ray.md for the guarantees). Before measuring, it checks that the node runs the run's
harness code, torch and device model, and sees the driver's copy of the submission, its
weights and the dataset; it logs to a private directory whose tail travels back.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ntire_bench.runner.context import Identity, RunConfig, RunContext
from ntire_bench.data.datasets import PreparedDataset, dataset_fingerprint
from ntire_bench.results.provenance import (collect_environment, device_name, gpu_telemetry, harness_fingerprint, nvml_static, resolve_device)
from ntire_bench.runner.passes import PassJob, node_facts, run_pass_job
from ntire_bench.runner.verify import run_verify_job
from ntire_bench.plugins.declaration import PluginEntry
from ntire_bench.util.text import one_line
from ntire_bench.util.hashing import sha256_tree
from ntire_bench.worker.protocol import WorkerFailure
from ntire_bench.results.records import Environment, Settings
from ntire_bench.runner.evaluation import dependency_digests
from ntire_bench.results.store import ResultsStore

CPU_NODE_RESOURCE = "ntire_bench_node"
GPU_MODEL_PREFIX = "ntire_bench_gpu:"
DEFAULT_MAX_RETRIES = 3
LOG_TAIL_BYTES = 1 << 20  # of each job's worker log, shipped back to the driver


class RaySetupError(ValueError):
    """The Ray cluster cannot run this benchmark as asked; the message is one line saying what to do."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RaySetupError("--executor ray needs Ray: pip install 'ntire-bench[ray]' (on every node)") from None
    return ray


# ------------------------------------------------------------------- resources


def gpu_model_resource(model: str) -> str:
    """The custom resource that pins a GPU model: ``NVIDIA RTX A6000`` -> ``ntire_bench_gpu:NVIDIA_RTX_A6000``."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", model).strip("_")
    if not slug:
        raise RaySetupError(f"GPU model {model!r} has no letters or digits; pass --ray-gpu-model with its name")
    return GPU_MODEL_PREFIX + slug


def node_resources() -> dict[str, float]:
    """What this machine should advertise to Ray: ``ntire_bench_node`` once, and one GPU-model unit per GPU."""
    import torch

    resources: dict[str, float] = {CPU_NODE_RESOURCE: 1}
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            key = gpu_model_resource(torch.cuda.get_device_name(index))
            resources[key] = resources.get(key, 0) + 1
    return resources


def timed_options(device: str, gpu_model: str | None = None) -> dict[str, Any]:
    """Ray task options of a timed (or verification) job: a whole GPU of the pinned model, or a whole CPU node."""
    if device.startswith("cuda"):
        if not gpu_model:
            raise RaySetupError("a CUDA job needs a GPU model to pin; pass --ray-gpu-model NAME")
        return {"num_cpus": 1, "num_gpus": 1, "resources": {gpu_model_resource(gpu_model): 1}}
    return {"num_cpus": 1, "resources": {CPU_NODE_RESOURCE: 1}}


# ------------------------------------------------------------------- on a node


@dataclass
class JobReport:
    """What a node returns for one job: the outcome or the submission's failure, and where it ran."""

    key: str
    attempt: int
    facts: dict[str, Any]
    value: Any = None  # PassOutcome for a pass, the largest difference for a verification
    failure: str | None = None
    log: bytes = b""
    seconds: float = 0.0


class AttemptLedger:
    """Every attempt of every job, registered as it starts (a Ray actor on the driver's node).

    An attempt that registered but did not return was lost with its worker or node: a retry.
    """

    def __init__(self) -> None:
        self._attempts: dict[str, list[dict[str, Any]]] = {}

    def begin(self, key: str, facts: dict[str, Any]) -> int:
        attempts = self._attempts.setdefault(key, [])
        attempts.append({**facts, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return len(attempts)

    def attempts(self, key: str) -> list[dict[str, Any]]:
        return list(self._attempts.get(key, []))


def node_log(message: str) -> None:
    print(message, file=sys.stderr)


def job_facts(device: str) -> dict[str, Any]:
    """Where a job runs: host, Ray node, worker pid, and the device model (GPU name, UUID and driver)."""
    import ray

    facts = node_facts(device)
    facts.update(ray_node=ray.get_runtime_context().get_node_id(), pid=os.getpid(), device_name=device_name(device))
    if device.startswith("cuda"):
        uuid = facts.get("gpu_uuid")
        if uuid and not str(uuid).startswith("GPU-"):
            facts["gpu_uuid"] = uuid = f"GPU-{uuid}"
        facts["driver"] = nvml_static(uuid).get("driver")
    return facts


@lru_cache(maxsize=64)
def _local_fingerprint(stamp: tuple) -> str:
    from ntire_bench.data.datasets import ImagePair

    return dataset_fingerprint(ImagePair(name, Path(lr), Path(hr)) for name, lr, _, hr, _ in stamp)


def dataset_problem(dataset: PreparedDataset) -> str | None:
    """Why this node's copy of ``dataset`` cannot be used (missing, or not the driver's files), or None."""
    try:
        stamp = tuple((p.name, str(p.lr_path), p.lr_path.stat().st_mtime_ns, str(p.hr_path),
                       p.hr_path.stat().st_mtime_ns) for p in dataset.pairs)
    except OSError as exc:
        return (f"dataset {dataset.spec.name} is not readable here ({exc.filename}: {exc.strerror}); dataset paths "
                "must be valid on every node (a shared file system, docs/ray.md)")
    if _local_fingerprint(stamp) != dataset.fingerprint:
        return (f"dataset {dataset.spec.name} here differs from the driver's copy (fingerprint mismatch); "
                "every node must see the same files at the same paths")
    return None


def node_problem(job: Any, ctx: RunContext, facts: dict[str, Any]) -> str | None:
    """Why this node must not run ``job`` for this run (other code, torch, device model or data), or None."""
    import torch

    where = f"node {facts.get('host')} (Ray node {str(facts.get('ray_node'))[:12]})"

    if harness_fingerprint() != ctx.environment.harness_fingerprint:
        return f"{where} runs other ntire-bench code than the run's; install the same version on every node"
    if torch.__version__ != ctx.environment.torch:
        return f"{where} has torch {torch.__version__}, the run measures with {ctx.environment.torch}"
    if facts.get("device_name") != ctx.environment.device_name:
        return (f"{where} has {facts.get('device_name')}, the run measures on {ctx.environment.device_name}; "
                "advertise the pinning resource only on nodes of that model (docs/ray.md)")
    problem = submission_problem(job.entry, job.identity)
    if problem is None and isinstance(job, PassJob):
        problem = dataset_problem(job.dataset)
    return f"{where}: {problem}" if problem else None


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_tree(Path(path))


def _digest_here(path: Path) -> str:
    if path.is_dir():  # a package: its files' times are not in the directory's, so no cache
        return sha256_tree(path)
    stat = path.stat()
    return _file_digest(str(path), stat.st_size, stat.st_mtime_ns)


def submission_problem(entry: PluginEntry, identity: Identity) -> str | None:
    """Why this node's copy of the submission's code or weights is not the driver's, or None."""
    checks = [] if entry.source.startswith("entry-point:") else [(Path(entry.source), entry.source_sha256, "its code")]
    if identity.checkpoint is not None:
        checks.append((identity.checkpoint, identity.checkpoint_sha256, "its checkpoint"))
    for path, expected, what in checks:
        try:
            found = _digest_here(path)
        except OSError:
            return (f"{entry.name}: {what} {path} is not readable here; submissions and checkpoints must be at the "
                    "same paths on every node (a shared file system, docs/ray.md)")
        if expected and found != expected:
            return f"{entry.name}: {what} {path} here differs from the driver's copy"
    return None


def run_on_node(kind: str, job: Any, ctx: RunContext, key: str, ledger: Any) -> JobReport:
    """A Ray task: register the attempt, check the node, run the job with node-local logs, report back."""
    import ray

    facts = job_facts(ctx.device)
    attempt = ray.get(ledger.begin.remote(key, facts))
    workdir = Path(tempfile.mkdtemp(prefix="ntire-bench-ray-"))
    # Logs go to a private directory here and travel back: results and logs are written by the driver only.
    config = replace(ctx.config, out_dir=workdir, log=node_log, progress=False)
    node_ctx = replace(ctx, config=config, store=ResultsStore(workdir), hidden=[*ctx.hidden, workdir])
    cuda = ctx.device.startswith("cuda")
    started = time.perf_counter()
    value, failure, log = None, None, b""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        facts["niceness"] = _renice(0)  # the submission's process inherits it
        failure = node_problem(job, ctx, facts)
        if failure is None:
            before = gpu_telemetry(facts.get("gpu_uuid")) if cuda else None
            try:
                value = run_pass_job(job, node_ctx) if kind == "pass" else run_verify_job(job, node_ctx)
                if kind == "pass":  # the driver compares them with its own copies (the team's modules)
                    facts["dependencies"] = dependency_digests(value.loaded.get("dependencies", []))
            except WorkerFailure as exc:
                failure = str(exc)
            if cuda:
                facts["telemetry"] = {"start": before, "end": gpu_telemetry(facts.get("gpu_uuid"))}
    except Exception as exc:  # the harness itself failed here (unreadable image, full disk): this job's
        failure = f"node {facts.get('host')}: the harness failed: {one_line(exc)}"  # submission fails, the run goes on
    finally:
        _renice(niceness)
        for path in (workdir / "logs").glob("*.log"):
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
                log += fh.read()
        shutil.rmtree(workdir, ignore_errors=True)
    return JobReport(key, attempt, facts, value, failure, log, time.perf_counter() - started)


def _renice(value: int) -> int:
    """Set this process's niceness to ``value`` where allowed; return the niceness in force.

    Ray starts its workers at niceness 15 (``RAY_worker_niceness``) so that its own daemons
    come first; a timed submission at 15 yields to every other process of the node. Lowering
    it needs root or CAP_SYS_NICE; otherwise start the nodes with RAY_worker_niceness=0.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except OSError:
        pass
    return os.getpriority(os.PRIO_PROCESS, 0)


def probe_node(config: RunConfig, device: str) -> tuple[str, Environment, Settings, dict[str, Any]]:
    """A Ray task on a node of the measured class: the device, environment and settings the run records."""
    device = resolve_device(device)
    return (device, collect_environment(device, config.threads_for(device)), config.settings(device),
            job_facts(device))
