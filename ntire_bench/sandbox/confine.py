"""OS-level confinement of untrusted submission workers.

A ``SandboxPolicy`` says what a worker may read (``readable``), where it may write
(``writable``: its private work dir) and what it must never reach (``hidden``: dataset roots,
results), even where a hidden path lies inside a readable one. Three mechanisms enforce it,
strongest first:

``bubblewrap``
    The child command is wrapped in ``bwrap``: an empty root with read-only binds of the
    whitelist only, a read-write bind of the work dir, a fresh ``/proc`` in a new PID
    namespace, no network, IPC, UTS or cgroup sharing, all capabilities dropped, no
    further user namespaces, and the child as PID 1 of its namespace.
``landlock``
    The child confines itself at start-up (``enter_from_environment``, or
    ``python -m ntire_bench.sandbox MODULE``, before numpy or torch are imported): a Landlock
    file whitelist, TCP bind/connect denied (ABI >= 4), signals and abstract Unix sockets
    scoped to the sandbox (ABI >= 6), a seccomp filter refusing Unix sockets, io_uring and
    new user namespaces, a private network namespace when the kernel allows one, no
    capabilities, ``no_new_privs``.
``none``
    No OS enforcement; every report says so.

Hidden paths inside a readable directory are handled by *carving* (``carve``): the readable
directory is replaced by its children, recursively, except the branch leading to the hidden
path; ``ALWAYS_HIDDEN`` root-only secrets are carved out of ``/etc`` for every policy.
Everything here is standard library only, so the child can enter the sandbox while it still
has a single thread (Landlock, seccomp and capability changes apply to the calling thread).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ntire_bench.sandbox.landlock import apply_landlock, apply_seccomp, gpu_device_nodes, probe_landlock, seccomp_program
from ntire_bench.sandbox.policy import (BWRAP_ENFORCED, ENV_VAR, MAX_ENV_BYTES, MECHANISMS, NONE_REPORT, SandboxError, SandboxPolicy, SandboxReport, base_readable_paths, check_mechanism, is_within, plan_paths)

_BWRAP_START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- bubblewrap


_BWRAP_HELP: dict[str, str] = {}


def _bwrap_help(bwrap: str) -> str:
    """``bwrap --help`` (cached), to use options only where this bubblewrap has them."""
    if bwrap not in _BWRAP_HELP:
        try:
            done = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
            _BWRAP_HELP[bwrap] = done.stdout + done.stderr
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_HELP[bwrap] = ""
    return _BWRAP_HELP[bwrap]




def _bwrap_argv(argv: list[str], policy: SandboxPolicy, report: SandboxReport) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap: bwrap is not on PATH; install the 'bubblewrap' package or use --sandbox landlock")
    plan = plan_paths(policy)
    options = _bwrap_help(bwrap)
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if "--disable-userns" in options:
        args.append("--disable-userns")
    if "--as-pid-1" in options:  # no bwrap reaper inside: the child's only neighbours are its own children
        args.append("--as-pid-1")
    args += ["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--setenv", ENV_VAR,
             json.dumps({"mechanism": "bubblewrap", "report": report.to_dict()})]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if policy.gpu:
        for node in gpu_device_nodes():
            args += ["--dev-bind", node, node]
    # bwrap mounts a fresh /dev; devices come in through gpu=True only.
    read_only = [p for p in plan.read_only if not is_within(p, Path("/dev"))]
    mounts = [(p, "--ro-bind") for p in read_only] + [(p, "--bind") for p in plan.read_write]
    # Parents before children, so a nested bind (the work dir inside a readable dir) lands on top.
    for path, option in sorted(mounts, key=lambda m: (len(m[0].parts), str(m[0]))):
        args += [option, str(path), str(path)]
    for link, target in plan.symlinks:
        args += ["--symlink", target, str(link)]
    args += ["--remount-ro", "/", "--"]
    return args + list(argv)


def _probe_bubblewrap() -> SandboxReport:
    """Start a trivial sandboxed Python once and check it is really confined."""
    if shutil.which("bwrap") is None:
        raise SandboxError("bubblewrap: bwrap is not on PATH (install the 'bubblewrap' package)")
    check = (
        "import os,sys\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
        "confined = os.getpid() == 1 and int(status['CapEff'], 16) == 0 and status['NoNewPrivs'].strip() == '1'\n"
        "sys.exit(0 if confined else 3)\n"
    )
    report = SandboxReport("bubblewrap", BWRAP_ENFORCED, _bwrap_detail())
    with tempfile.TemporaryDirectory(prefix="ntire-bench-probe-") as work:
        policy = SandboxPolicy(readable=tuple(base_readable_paths()), writable=(Path(work),))
        argv, env = wrap([sys.executable, "-c", check], policy, "bubblewrap", report=report)
        try:
            done = subprocess.run(argv, env={**_minimal_env(), **env}, cwd=work, capture_output=True,
                                  text=True, timeout=_BWRAP_START_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxError(f"bubblewrap: a test sandbox did not start: {exc}") from None
    if done.returncode == 3:
        raise SandboxError("bubblewrap: the test sandbox kept capabilities or was not PID 1; not trusting it")
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise SandboxError(f"bubblewrap: a test sandbox failed to start: {reason}")
    return report


def _bwrap_detail() -> str:
    return ("bubblewrap: whitelisted read-only binds, private work dir, fresh /proc in a new PID namespace, "
            "no network/IPC namespaces shared, all capabilities dropped, no new user namespaces")


def _minimal_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH")}


# --------------------------------------------------------------------------- public entry points

_PROBES: dict[str, SandboxReport | SandboxError] = {}
_PROBERS = {"bubblewrap": _probe_bubblewrap, "landlock": probe_landlock, "none": lambda: NONE_REPORT}


def _probe_one(mechanism: str) -> SandboxReport:
    if mechanism not in _PROBES:
        try:
            _PROBES[mechanism] = _PROBERS[mechanism]()
        except SandboxError as exc:
            _PROBES[mechanism] = exc
    outcome = _PROBES[mechanism]
    if isinstance(outcome, SandboxError):
        raise outcome
    return outcome


def probe(requested: str = "auto") -> SandboxReport:
    """The mechanism to use here: ``auto`` picks the strongest that works (bubblewrap, landlock,
    none) and says in ``detail`` why stronger ones were passed over; naming one forces it and
    raises SandboxError with the reason when it cannot work. Results are cached per process."""
    check_mechanism(requested, allow_auto=True)
    if requested != "auto":
        return _probe_one(requested)
    reasons = []
    for mechanism in MECHANISMS:
        try:
            report = _probe_one(mechanism)
        except SandboxError as exc:
            reasons.append(str(exc))
            continue
        if reasons:
            report = SandboxReport(report.mechanism, report.enforced, f"{report.detail} (weaker: {'; '.join(reasons)})")
        return report
    raise AssertionError("unreachable: 'none' always works")


def wrap(
    argv: list[str], policy: SandboxPolicy, mechanism: str, report: SandboxReport | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv to execute and the environment variables to add so that the child runs under
    ``mechanism`` with ``policy``. ``report`` (bubblewrap only) is what the child's
    ``enter_from_environment`` returns; by default the probed one.

    bubblewrap: argv is prefixed with ``bwrap ...``. landlock: argv is unchanged and the env
    carries the carved policy (no hidden path names) for the child to apply to itself.
    none: argv unchanged, the env marks the child as unsandboxed.
    """
    check_mechanism(mechanism, allow_auto=False)
    if not argv:
        raise SandboxError("wrap: empty command")
    if mechanism == "bubblewrap":
        report = report or SandboxReport("bubblewrap", BWRAP_ENFORCED, _bwrap_detail())
        return _bwrap_argv(list(argv), policy, report), {}
    if mechanism == "none":
        return list(argv), {ENV_VAR: json.dumps({"mechanism": "none"})}
    plan = plan_paths(policy)
    carved = SandboxPolicy(readable=plan.read_only, writable=plan.read_write, gpu=policy.gpu)
    payload = json.dumps({"mechanism": "landlock", "policy": json.loads(carved.to_json())})
    if len(payload.encode()) >= MAX_ENV_BYTES:
        raise SandboxError(f"landlock: the carved policy has {len(plan.read_only)} paths, too many for the "
                           "environment; hide fewer paths inside readable directories")
    env = {ENV_VAR: payload}
    if plan.read_write:  # caches and temporary files land in the work dir, the only writable place
        env["HOME"] = env["TMPDIR"] = str(plan.read_write[0])
    return list(argv), env


_ENTERED: list[SandboxReport] = []


def enter_from_environment() -> SandboxReport | None:
    """Called first thing in a worker (before numpy/torch): apply what ``wrap`` asked for.

    Returns None when the process was not started through ``wrap``; the same report on a
    second call. Raises SandboxError when the sandbox cannot be entered: the worker must
    then exit rather than run unconfined.
    """
    if _ENTERED:
        return _ENTERED[0]
    raw = os.environ.pop(ENV_VAR, None)
    if raw is None:
        return None
    try:
        request = json.loads(raw)
        mechanism = request["mechanism"]
    except (ValueError, KeyError, TypeError):
        raise SandboxError(f"{ENV_VAR} is malformed; start workers through ntire_bench.sandbox.wrap") from None
    check_mechanism(mechanism, allow_auto=False)
    if mechanism == "landlock":
        report = apply_landlock(SandboxPolicy.from_json(json.dumps(request.get("policy", {}))))
    elif mechanism == "bubblewrap":
        if not _looks_confined():
            raise SandboxError(f"{ENV_VAR} says bubblewrap but this process holds capabilities or is not PID 1")
        # bubblewrap leaves the syscalls open; the same filter as Landlock's keeps the worker on its cores.
        failure = apply_seccomp()
        if failure is not None and seccomp_program(os.uname().machine) is not None:
            raise SandboxError(f"bubblewrap: the seccomp filter could not be installed ({failure})")
        report = SandboxReport.from_dict(request["report"])
    else:
        report = NONE_REPORT
    _ENTERED.append(report)
    return report


def _looks_confined() -> bool:
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return os.getpid() == 1 and int(status["CapEff"], 16) == 0 and status["NoNewPrivs"].strip() == "1"
    except (OSError, KeyError, ValueError):
        return False
