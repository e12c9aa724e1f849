"""Running one submission's model: the only code that executes untrusted plugins.

``SubmissionSession`` loads a model and super-resolves LR arrays with timing. It runs
in a child process (``python -m ntire_bench.worker``), driven over a JSON-lines pipe by
``IsolatedWorker``, or in the caller's process through ``InProcessWorker``; both expose
the same methods. The child receives LR pixels through ``.npy`` files in a private
temporary directory and writes SR the same way: no HR path or pixel ever reaches it.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .plugins import PluginError, Submission, load_submission, load_weights, one_line
from .runtime import TimingSettings, time_forward

# Quantised outputs of two identical passes may differ by one level where a float lands
# on a rounding boundary (non-associative GPU reductions); more than that is nondeterminism.
DETERMINISM_TOLERANCE = 1
# Environment variables a child may inherit; everything else (data roots included) is dropped.
_ENV_ALLOWLIST = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "SHELL",
                  "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "NTIRE_BENCH_MODEL_ZOO")
_ENV_PREFIXES = ("CUDA_", "NVIDIA_", "CUBLAS_", "CUDNN_", "PYTORCH_", "TORCH_", "NCCL_")


class WorkerFailure(Exception):
    """The submission failed; ``str(exc)`` is the one-line reason recorded in its results."""


@dataclass
class WorkerConfig:
    """Everything a session needs to load and run one submission."""

    source: str
    name: str
    checkpoint: str | None
    device: str = "cpu"
    warmup: int = 2
    repeats: int = 5
    threads: int | None = None
    cudnn_benchmark: bool = False
    complexity_size: tuple[int, int] = (256, 256)
    checkpoint_sha256: str | None = None
    count_complexity: bool = True


class SubmissionModule(nn.Module):
    """A submission's model with its input contract applied: padding, cropping and custom forward.

    Complexity is counted through this wrapper so that it covers exactly what is timed.
    """

    def __init__(self, submission: Submission, model: nn.Module):
        super().__init__()
        self.model = model
        self.scale = submission.scale
        self.pad_to_multiple = submission.pad_to_multiple
        self.custom_forward = submission.forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.pad_to_multiple)
        out = self.custom_forward(self.model, x) if self.custom_forward else self.model(x)
        if not isinstance(out, torch.Tensor):
            raise WorkerFailure(f"forward returned {type(out).__name__}, expected a torch.Tensor")
        return out[..., : height * self.scale, : width * self.scale]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right of an NCHW tensor to a multiple, reflecting (replicating if too small)."""
    if multiple <= 1:
        return x
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not pad_h and not pad_w:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class SubmissionSession:
    """A loaded submission, ready to super-resolve LR images with timing."""

    def __init__(self, config: WorkerConfig):
        self.config = config
        self.device = torch.device(config.device)
        self.settings = TimingSettings(warmup=config.warmup, repeats=config.repeats, device=config.device)
        self.submission: Submission | None = None
        self.module: SubmissionModule | None = None
        self.weights_loaded = False

    def load(self) -> dict[str, Any]:
        """Import the plugin, build the model, load weights, and count its complexity."""
        from .complexity import measure_complexity

        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        torch.backends.cudnn.benchmark = self.config.cudnn_benchmark
        try:
            self.submission = load_submission(self.config.source, self.config.name)
        except PluginError as exc:
            raise WorkerFailure(str(exc)) from exc
        model = _guarded("building the model", self.submission.model)
        if not isinstance(model, nn.Module):
            raise WorkerFailure(f"the model factory returned {type(model).__name__}, expected torch.nn.Module")
        if self.config.checkpoint:
            try:
                load_weights(model, self.config.checkpoint, self.submission.sha256)
            except PluginError as exc:
                raise WorkerFailure(str(exc)) from exc
            self.weights_loaded = True
        self.module = SubmissionModule(self.submission, model).to(self.device).eval()
        complexity = None
        if self.config.count_complexity:
            complexity = _guarded(
                "counting complexity",
                lambda: measure_complexity(self.module, self.config.complexity_size, device=str(self.device)),
            ).to_dict()
        return {
            "team": self.submission.team,
            "data_range": self.submission.data_range,
            "reference": self.submission.reference,
            "requires_weights": self.submission.requires_weights,
            "weights_loaded": self.weights_loaded,
            "complexity": complexity,
            "num_threads": torch.get_num_threads(),
        }

    def begin_dataset(self) -> None:
        """Reset the peak-memory counter, so each dataset reports its own peak."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def end_dataset(self) -> dict[str, Any]:
        """The peak memory since ``begin_dataset`` (CUDA only)."""
        if self.device.type != "cuda":
            return {"peak_memory_mb": None}
        torch.cuda.synchronize(self.device)
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}

    def super_resolve(self, lr: np.ndarray, check_determinism: bool = False) -> tuple[torch.Tensor, list[float]]:
        """Time the model on one HxWx3 uint8 LR image; return the uint8 (3,sH,sW) SR and samples in ms."""
        from .metrics import quantize

        assert self.submission is not None and self.module is not None, "call load() first"
        if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3:
            raise WorkerFailure(f"internal: LR must be HxWx3 uint8, got {lr.dtype} {lr.shape}")
        data_range = self.submission.data_range
        x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].to(self.device)
        x = x.float() * (data_range / 255.0)
        module = self.module

        def forward() -> torch.Tensor:
            return module(x)

        output, samples = _guarded("forward", lambda: time_forward(forward, self.settings))
        expected = (1, 3, lr.shape[0] * self.submission.scale, lr.shape[1] * self.submission.scale)
        _check_output(output, expected)
        sr = quantize(output[0], data_range)
        if check_determinism:
            with torch.inference_mode():
                again = quantize(_guarded("forward", forward)[0], data_range)
            diff = int((sr.int() - again.int()).abs().max())
            if diff > DETERMINISM_TOLERANCE:
                raise WorkerFailure(
                    f"non-deterministic output: two passes over the same image differ by up to {diff} "
                    "grey levels; fix seeds or disable random ops in eval mode"
                )
        return sr, samples


def _guarded(what: str, fn):
    """Call ``fn``, turning any exception into a one-line WorkerFailure."""
    try:
        return fn()
    except WorkerFailure:
        raise
    except MemoryError as exc:
        raise WorkerFailure(f"out of memory while {what}: {one_line(exc)}") from exc
    except torch.cuda.OutOfMemoryError as exc:
        raise WorkerFailure(f"out of GPU memory while {what}") from exc
    except Exception as exc:
        text = one_line(exc)
        if "can't allocate memory" in text or "out of memory" in text.lower():
            raise WorkerFailure(f"out of memory while {what}: {text}") from exc
        raise WorkerFailure(f"{what} raised {text}") from exc


def _check_output(output: Any, expected: tuple[int, ...]) -> None:
    if not isinstance(output, torch.Tensor):
        raise WorkerFailure(f"forward returned {type(output).__name__}, expected a torch.Tensor")
    if not output.is_floating_point():
        raise WorkerFailure(f"output dtype is {output.dtype}, expected a floating-point tensor")
    if tuple(output.shape) != expected:
        raise WorkerFailure(f"output shape is {tuple(output.shape)}, expected {expected}")
    if not bool(torch.isfinite(output).all()):
        bad = int((~torch.isfinite(output)).sum())
        raise WorkerFailure(f"output has {bad} NaN/Inf values")


# --------------------------------------------------------------------------- clients


class InProcessWorker:
    """Runs a session in this process: no isolation, no transfer cost, no timeout."""

    isolated = False

    def __init__(self, config: WorkerConfig):
        self.session = SubmissionSession(config)

    def load(self) -> dict[str, Any]:
        return self.session.load()

    def begin_dataset(self) -> None:
        _guarded("preparing the dataset", self.session.begin_dataset)

    def end_dataset(self) -> dict[str, Any]:
        return _guarded("finishing the dataset", self.session.end_dataset)

    def super_resolve(
        self, lr: np.ndarray, check_determinism: bool = False, want_output: bool = True
    ) -> tuple[torch.Tensor | None, list[float]]:
        sr, samples = self.session.super_resolve(lr, check_determinism)
        return (sr if want_output else None), samples

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


@dataclass
class WorkerLimits:
    """Per-submission resource limits for an isolated worker."""

    timeout_s: float = 3600.0
    memory_bytes: int | None = None
    threads: int | None = None
    scrub_paths: list[str] = field(default_factory=list)


def child_environment(threads: int | None, scrub_paths: list[str]) -> dict[str, str]:
    """A minimal environment for the child: allow-listed variables, no value naming a hidden path."""
    env = {}
    for key, value in os.environ.items():
        if key in _ENV_ALLOWLIST or key.startswith(_ENV_PREFIXES):
            if not any(hidden and hidden in value for hidden in scrub_paths):
                env[key] = value
    # The harness must be importable in the child even when run from a source tree.
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    return env


class IsolatedWorker:
    """Runs a session in a fresh child process with a timeout, a memory cap and thread limits."""

    isolated = True

    def __init__(self, config: WorkerConfig, limits: WorkerLimits, log_path: Path | None = None):
        self.config = config
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout_s
        shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.tmp = Path(tempfile.mkdtemp(prefix="ntire-bench-", dir=shm))
        self.log_path = log_path or self.tmp / "worker.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._count = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ntire_bench.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.tmp,
            env=child_environment(limits.threads, limits.scrub_paths),
            start_new_session=True,
            preexec_fn=self._apply_limits,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def _apply_limits(self) -> None:  # runs in the child between fork and exec
        if self.limits.memory_bytes and not self.config.device.startswith("cuda"):
            # RLIMIT_AS would also cap the CUDA driver's huge virtual reservations, so
            # the cap applies to CPU runs only; GPU OOM is caught as an exception instead.
            resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))

    def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write((json.dumps(payload) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailure(self._death_reason()) from None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not self._selector.select(timeout=remaining):
            self._kill()
            raise WorkerFailure(f"timed out after {self.limits.timeout_s:g} s (the --timeout limit)")
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerFailure(self._death_reason())
        try:
            reply = json.loads(line)
            if not isinstance(reply, dict):
                raise ValueError("not an object")
        except ValueError:
            self._kill()
            raise WorkerFailure(f"the worker sent a malformed reply: {line[:80]!r}") from None
        if not reply.get("ok"):
            raise WorkerFailure(reply.get("error") or "the worker failed without a reason")
        return reply

    def _death_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (killed, possibly for memory)" if -code == signal.SIGKILL else ""
            return f"worker process died with signal {name}{hint}"
        tail = self._log_tail()
        return f"worker process exited with code {code}" + (f"; last output: {tail}" if tail else "")

    def _log_tail(self) -> str:
        self._log.flush()
        try:
            lines = [l for l in self.log_path.read_text(errors="replace").splitlines() if l.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:200] if lines else ""

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def load(self) -> dict[str, Any]:
        return self._request({"op": "load", "config": asdict(self.config)})["result"]

    def begin_dataset(self) -> None:
        self._request({"op": "begin_dataset"})

    def end_dataset(self) -> dict[str, Any]:
        return self._request({"op": "end_dataset"})["result"]

    def super_resolve(
        self, lr: np.ndarray, check_determinism: bool = False, want_output: bool = True
    ) -> tuple[torch.Tensor | None, list[float]]:
        self._count += 1
        lr_file = self.tmp / f"lr-{self._count}.npy"
        sr_file = self.tmp / f"sr-{self._count}.npy"
        np.save(lr_file, lr, allow_pickle=False)
        try:
            reply = self._request(
                {"op": "image", "input": str(lr_file), "output": str(sr_file) if want_output else None,
                 "check_determinism": check_determinism}
            )
        finally:
            lr_file.unlink(missing_ok=True)
        sr = None
        if want_output:
            try:
                sr = torch.from_numpy(np.load(sr_file, allow_pickle=False))
            except (OSError, ValueError) as exc:
                raise WorkerFailure(f"the worker's output could not be read: {one_line(exc)}") from exc
            finally:
                sr_file.unlink(missing_ok=True)
        return sr, reply["samples"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(b'{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._kill()
        self._selector.close()
        self._log.close()
        for leftover in self.tmp.glob("*"):
            if leftover != self.log_path:
                leftover.unlink(missing_ok=True)
        if self.log_path.parent != self.tmp:
            try:
                self.tmp.rmdir()
            except OSError:
                pass


# --------------------------------------------------------------------------- child side


def _serve(session_holder: dict[str, SubmissionSession], request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "load":
        config = request["config"]
        config["complexity_size"] = tuple(config["complexity_size"])
        session = SubmissionSession(WorkerConfig(**config))
        session_holder["session"] = session
        return {"ok": True, "result": session.load()}
    session = session_holder.get("session")
    if session is None:
        return {"ok": False, "error": f"internal: '{op}' before 'load'"}
    if op == "begin_dataset":
        _guarded("preparing the dataset", session.begin_dataset)
        return {"ok": True}
    if op == "end_dataset":
        return {"ok": True, "result": _guarded("finishing the dataset", session.end_dataset)}
    if op == "image":
        lr = np.load(request["input"], allow_pickle=False)
        sr, samples = session.super_resolve(lr, request.get("check_determinism", False))
        if request.get("output"):
            np.save(request["output"], sr.cpu().numpy(), allow_pickle=False)
        return {"ok": True, "samples": samples}
    return {"ok": False, "error": f"internal: unknown op {op!r}"}


def main() -> None:
    """Child entry point: answer JSON-lines requests on stdin until told to exit."""
    # Keep the protocol on a private copy of stdout; anything the plugin prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    holder: dict[str, SubmissionSession] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        try:
            reply = _serve(holder, request)
        except WorkerFailure as exc:
            reply = {"ok": False, "error": str(exc)}
        except BaseException as exc:  # SystemExit from a plugin included: report, don't vanish
            reply = {"ok": False, "error": f"worker raised {one_line(exc)}"}
        protocol.write(json.dumps(reply) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
