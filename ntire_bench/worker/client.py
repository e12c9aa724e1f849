"""The parent's side of a worker: start it confined, send requests, read replies against a deadline.

``IsolatedWorker`` runs a fresh ``python -m ntire_bench.worker`` inside the OS sandbox
(sandbox.py) with a scrubbed environment, a private directory, a memory cap and a thread
limit, and talks to it over two dedicated pipes. ``InProcessWorker`` (``--no-isolation``,
trusted code only) answers the same requests in this process through the same reply
validation. Both time every request with the parent's own clock.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ntire_bench.worker.protocol import (Deadline, LineReader, ProtocolError, Reply, Request, WorkerFailure, parse_reply)
from ntire_bench.results.records import SandboxInfo
from ntire_bench.util.paths import IMPORT_ROOT

# Environment variables a child may inherit; everything else (data roots included) is dropped.
_ENV_ALLOWLIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "VIRTUAL_ENV", "LD_LIBRARY_PATH",
                  "NTIRE_BENCH_MODEL_ZOO")
_ENV_PREFIXES = ("CUDA_", "NVIDIA_", "CUBLAS_", "CUDNN_", "PYTORCH_", "TORCH_", "NCCL_")


@dataclass
class WorkerLimits:
    """Per-submission resource limits and confinement for an isolated worker."""

    timeout_s: float = 3600.0
    memory_bytes: int | None = None
    threads: int | None = None
    readable: list[Path] = field(default_factory=list)  # what the submission's code needs to read
    hidden: list[Path] = field(default_factory=list)  # dataset roots, results: never reachable
    sandbox: str = "auto"  # auto | bubblewrap | landlock | none
    gpu: bool = False
    cores: tuple[int, ...] = ()  # CPU affinity of the child (and everything it starts); empty: not pinned


def child_environment(threads: int | None, hidden: list[Path], home: Path) -> dict[str, str]:
    """A minimal environment for the child: allow-listed variables, none naming a hidden path."""
    hidden_text = [str(h) for h in hidden if str(h)]
    env = {}
    for key, value in os.environ.items():
        if key in _ENV_ALLOWLIST or key.startswith(_ENV_PREFIXES):
            if not any(h in value for h in hidden_text):
                env[key] = value
    env["HOME"] = str(home)
    env["TMPDIR"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The harness must be importable in the child even when run from a source tree; the
    # caller's own PYTHONPATH entries (where entry-point plugins may live) follow.
    env["PYTHONPATH"] = os.pathsep.join([str(IMPORT_ROOT), *map(str, python_path_entries(hidden))])
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
    return env


def python_path_entries(hidden: list[Path] = ()) -> list[Path]:
    """The caller's PYTHONPATH directories, except any that is or lies under a hidden path."""
    entries = []
    for text in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if not text:
            continue
        path = Path(text).resolve()
        if not any(path == h or h in path.parents for h in map(Path, hidden)):
            entries.append(path)
    return entries


def _private_dir() -> Path:
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="ntire-bench-", dir=shm))


class IsolatedWorker:
    """A submission in a fresh, confined child process."""

    isolated = True

    def __init__(self, limits: WorkerLimits, log_path: Path | None = None, device: str = "cpu"):
        from ntire_bench.sandbox import confine as sandbox

        self.limits = limits
        self.device = device
        self.deadline = time.monotonic() + limits.timeout_s
        self.tmp = _private_dir()
        self.log_path = log_path or self.tmp / "worker.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._seq = 0
        report = sandbox.probe(limits.sandbox)
        self.sandbox_info = SandboxInfo(report.mechanism, list(report.enforced), report.detail)
        policy = sandbox.SandboxPolicy(
            readable=tuple(sandbox.base_readable_paths()) + tuple(Path(p) for p in limits.readable),
            writable=(self.tmp,), hidden=tuple(Path(h) for h in limits.hidden), gpu=limits.gpu)
        # Enter the sandbox before the worker imports numpy or torch: Landlock and seccomp bind
        # only the calling thread, and numpy starts threads on import.
        argv, extra_env = sandbox.wrap([sys.executable, "-m", "ntire_bench.sandbox", "ntire_bench.worker"], policy,
                                       report.mechanism, report)
        request_read, self._request_fd = os.pipe()
        reply_fd, reply_write = os.pipe()
        env = child_environment(limits.threads, policy.hidden, self.tmp)
        env.update(extra_env)
        env.update({"NTIRE_BENCH_REQUEST_FD": str(request_read), "NTIRE_BENCH_REPLY_FD": str(reply_write)})
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, cwd=self.tmp, env=env,
                pass_fds=(request_read, reply_write), start_new_session=True, preexec_fn=self._apply_limits)
        finally:
            os.close(request_read)
            os.close(reply_write)
        self.reader = LineReader(reply_fd)
        os.set_blocking(self._request_fd, False)

    def renew_deadline(self) -> None:
        """Start the ``--timeout`` clock again: a worker started ahead of its work waited idle until now."""
        self.deadline = time.monotonic() + self.limits.timeout_s

    def _apply_limits(self) -> None:  # runs in the child between fork and exec
        if self.limits.cores:
            # Inherited by the sandbox and every thread or process the submission starts; the sandbox's
            # seccomp filter refuses sched_setaffinity, so the submission cannot widen it again.
            os.sched_setaffinity(0, self.limits.cores)
        if self.limits.memory_bytes and not self.device.startswith("cuda"):
            # RLIMIT_AS would also cap the CUDA driver's huge virtual reservations, so
            # the cap applies to CPU runs only; GPU OOM is caught as an exception instead.
            resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))

    def request(self, op: str, **args: Any) -> tuple[Reply, float]:
        """Send one request; return the validated reply and the parent-clock milliseconds it took."""
        self._seq += 1
        request = Request(op=op, args=args, seq=self._seq)
        started = time.perf_counter_ns()
        self._send(request.encode())
        try:
            line = self.reader.read_line(self.deadline)
        except Deadline:
            self.kill()
            raise WorkerFailure(f"timed out after {self.limits.timeout_s:g} s (the --timeout limit)") from None
        except EOFError:
            raise WorkerFailure(self._death_reason()) from None
        except ProtocolError as exc:
            self.kill()
            raise WorkerFailure(str(exc)) from None
        elapsed = (time.perf_counter_ns() - started) / 1e6
        try:
            reply = parse_reply(line, request)
            if self.reader.pending():
                raise ProtocolError(f"the worker wrote more than one reply to '{op}' (a forged or stray write)")
        except ProtocolError as exc:
            self.kill()
            raise WorkerFailure(str(exc)) from None
        if not reply.ok:
            raise WorkerFailure(reply.error or "the worker failed without a reason")
        return reply, elapsed

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if time.monotonic() > self.deadline:
                self.kill()
                raise WorkerFailure(f"timed out after {self.limits.timeout_s:g} s (the --timeout limit)")
            try:
                written = os.write(self._request_fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, OSError):
                raise WorkerFailure(self._death_reason()) from None
            view = view[written:]

    def _death_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (killed, possibly for memory)" if -code == signal.SIGKILL else ""
            return f"worker process died with signal {name}{hint}"
        if code is not None and code > 128 and self.sandbox_info.mechanism == "bubblewrap":
            # bubblewrap reports its child's fatal signal as 128 + signal number
            try:
                name = signal.Signals(code - 128).name
                return f"worker process died with signal {name}"
            except ValueError:
                pass
        tail = self._log_tail()
        return f"worker process exited with code {code}" + (f"; last output: {tail}" if tail else "")

    def _log_tail(self) -> str:
        self._log.flush()
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:200] if lines else ""

    def kill(self) -> None:
        """Kill the worker's whole process group now."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def close(self) -> None:
        """Ask the worker to exit, kill whatever is left of its process group, and remove its directory (once)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if self.proc.poll() is None:
            try:
                self._send(Request(op="exit", seq=self._seq + 1).encode())
                self.proc.wait(timeout=10)
            except (WorkerFailure, subprocess.TimeoutExpired):
                pass
        # Threads or processes a plugin left behind die with the group.
        self.kill()
        self.reader.close()
        for fd in (self._request_fd, self.reader.fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        keep = self.log_path if self.log_path.parent == self.tmp else None
        if keep is None:
            shutil.rmtree(self.tmp, ignore_errors=True)


class InProcessWorker:
    """Runs the session in this process (``--no-isolation``): trusted code only, no timeout or memory cap."""

    isolated = False

    def __init__(self, limits: WorkerLimits | None = None, log_path: Path | None = None, device: str = "cpu"):
        from ntire_bench.worker.session import Session

        self.session = Session()
        self.tmp = _private_dir()
        self._seq = 0
        self.sandbox_info = SandboxInfo("in-process", [], "--no-isolation: the submission ran in the harness process")

    def request(self, op: str, **args: Any) -> tuple[Reply, float]:
        from ntire_bench.worker.session import serve

        self._seq += 1
        request = Request(op=op, args=args, seq=self._seq)
        started = time.perf_counter_ns()
        line = serve(self.session, Request.decode(request.encode()))
        elapsed = (time.perf_counter_ns() - started) / 1e6
        try:
            reply = parse_reply(line.rstrip(b"\n"), request)
        except ProtocolError as exc:
            raise WorkerFailure(str(exc)) from None
        if not reply.ok:
            raise WorkerFailure(reply.error or "the submission failed without a reason")
        return reply, elapsed

    def renew_deadline(self) -> None:
        return None

    def kill(self) -> None:
        return None

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
        shutil.rmtree(self.tmp, ignore_errors=True)
