"""Provenance and GPU telemetry recorded with every result.

NVML (``pynvml`` from nvidia-ml-py) is optional at run time: without a driver, the GPU
fields are simply absent. Telemetry never fails a run.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from ntire_bench.util.version import __version__
from ntire_bench.results.records import Environment
from ntire_bench.util.hashing import sha256_tree
from ntire_bench.util.paths import PACKAGE_DIR

# Clock movement during one submission beyond this fraction is reported as a warning.
CLOCK_DRIFT_WARNING = 0.02


def resolve_device(requested: str) -> str:
    """Turn ``auto|cpu|cuda|cuda:N`` into a concrete torch device string, or raise ValueError."""
    requested = (requested or "auto").lower()
    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {requested}: no CUDA device is available here; use --device cpu")
        return requested if ":" in requested else "cuda:0"
    raise ValueError(f"--device {requested}: expected auto, cpu, cuda or cuda:N")


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU model name, as the OS reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str) -> str:
    """Human name of the measuring device: the GPU model, or the CPU model."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()


@lru_cache(maxsize=None)
def git_commit(path: str | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (the harness by default), if any."""
    where = path or str(PACKAGE_DIR)
    try:
        out = subprocess.run(
            ["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@lru_cache(maxsize=None)
def harness_fingerprint() -> str:
    """sha256 over the harness's own source files: any change to the code that measures changes it."""
    return sha256_tree(PACKAGE_DIR)


def collect_environment(device: str, threads: int | None = None) -> Environment:
    """Versions, device and host facts that make a result reproducible."""
    env = Environment(
        harness_version=__version__,
        harness_fingerprint=harness_fingerprint(),
        git_commit=git_commit(),
        python=platform.python_version(),
        platform=platform.platform(),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        device=device,
        device_name=device_name(device),
        cpu=cpu_name(),
        threads=threads if threads is not None else torch.get_num_threads(),
        host=platform.node(),
    )
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.gpu = {
            "name": props.name,
            "uuid": _uuid_of(props),
            "total_memory_mb": props.total_memory / 2**20,
            "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
        }
        env.gpu.update(nvml_static(env.gpu["uuid"]))
    return env


def _uuid_of(props: Any) -> str | None:
    uuid = getattr(props, "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith("GPU-") else f"GPU-{text}"


def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no driver, no library, no permission: telemetry is optional
        return None


def _nvml_handle(nvml, uuid: str | None):
    if uuid:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(uuid.encode() if isinstance(uuid, str) else uuid)
        except Exception:
            pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    return nvml.nvmlDeviceGetHandleByIndex(int(visible) if visible.isdigit() else 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_static(uuid: str | None) -> dict[str, Any]:
    """Driver version and the device's identity from NVML; empty without NVML."""
    nvml = _nvml()
    if nvml is None:
        return {}
    try:
        handle = _nvml_handle(nvml, uuid)
        return {
            "driver": _text(nvml.nvmlSystemGetDriverVersion()),
            "nvml_name": _text(nvml.nvmlDeviceGetName(handle)),
            "nvml_uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
            "power_limit_w": nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0,
        }
    except Exception as exc:
        return {"nvml_error": str(exc)}


# Throttle bits that are not a measurement hazard: an idle GPU, or clocks an admin pinned.
_BENIGN_THROTTLE_BITS = 0x1 | 0x2


def gpu_telemetry(uuid: str | None) -> dict[str, Any] | None:
    """A snapshot of clocks, temperature, power and throttle reasons, or None without NVML."""
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        handle = _nvml_handle(nvml, uuid)
        reasons_fn = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nvml, "nvmlDeviceGetCurrentClocksThrottleReasons"
        )
        reasons = int(reasons_fn(handle))
        return {
            "sm_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
            "mem_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
            "temperature_c": nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
            "power_w": nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
            "throttle_reasons": reasons,
            "throttled": bool(reasons & ~_BENIGN_THROTTLE_BITS),
        }
    except Exception as exc:
        return {"nvml_error": str(exc)}


def telemetry_warnings(start: dict[str, Any] | None, end: dict[str, Any] | None) -> list[str]:
    """Warnings for a timing window: throttling seen, or the SM clock moving by more than 2%."""
    warnings: list[str] = []
    if not start or not end or "sm_clock_mhz" not in start or "sm_clock_mhz" not in end:
        return warnings
    for label, snap in (("start", start), ("end", end)):
        if snap.get("throttled"):
            warnings.append(
                f"GPU throttling at the {label} of timing (NVML reasons 0x{snap['throttle_reasons']:x}); "
                "runtimes may be inflated"
            )
    before, after = start["sm_clock_mhz"], end["sm_clock_mhz"]
    if before and abs(after - before) / before > CLOCK_DRIFT_WARNING:
        warnings.append(
            f"GPU SM clock moved from {before} to {after} MHz during timing (>2%); "
            "lock clocks or let the GPU cool, then re-run"
        )
    return warnings
