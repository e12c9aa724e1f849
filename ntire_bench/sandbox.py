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

import ctypes
import glob
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

MECHANISMS = ("bubblewrap", "landlock", "none")
ENV_VAR = "NTIRE_BENCH_SANDBOX"
# Linux limits one environment string to 32 pages (MAX_ARG_STRLEN).
_MAX_ENV_BYTES = 128 * 1024
_BWRAP_START_TIMEOUT_S = 30.0
# Root-only secrets inside the readable /etc: a worker started by root keeps uid 0 (without
# capabilities), so file permissions alone would not stop it from reading these.
ALWAYS_HIDDEN = (Path("/etc/shadow"), Path("/etc/shadow-"), Path("/etc/gshadow"), Path("/etc/gshadow-"),
                 Path("/etc/sudoers"), Path("/etc/sudoers.d"), Path("/etc/ssh"), Path("/etc/ssl/private"))


class SandboxError(RuntimeError):
    """A sandbox could not be set up or entered; ``str(exc)`` is a one-line reason."""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class SandboxPolicy:
    """What a sandboxed worker may read, where it may write, and what it must never reach.

    ``readable`` paths are readable and executable, ``writable`` ones readable and writable
    (the worker's private dir). ``hidden`` wins over both, even when nested inside them.
    ``gpu`` grants the NVIDIA device nodes. Paths must be absolute.
    """

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()
    gpu: bool = False

    def __post_init__(self) -> None:
        for name in ("readable", "writable", "hidden"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                raise SandboxError(f"SandboxPolicy.{name} must be a sequence of paths, not one path")
            paths = tuple(Path(p) for p in value)
            for path in paths:
                if not path.is_absolute():
                    raise SandboxError(f"SandboxPolicy.{name}: {path} is not an absolute path")
            object.__setattr__(self, name, paths)
        if not isinstance(self.gpu, bool):
            raise SandboxError(f"SandboxPolicy.gpu must be true or false, got {self.gpu!r}")

    def to_json(self) -> str:
        """The policy as a JSON object of path strings."""
        return json.dumps({
            "readable": [str(p) for p in self.readable],
            "writable": [str(p) for p in self.writable],
            "hidden": [str(p) for p in self.hidden],
            "gpu": self.gpu,
        })

    @classmethod
    def from_json(cls, text: str) -> "SandboxPolicy":
        """Parse ``to_json`` output; a malformed policy raises SandboxError naming the field."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SandboxError(f"sandbox policy is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SandboxError("sandbox policy must be a JSON object")
        unknown = set(data) - {"readable", "writable", "hidden", "gpu"}
        if unknown:
            raise SandboxError(f"sandbox policy has unknown field(s): {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = {}
        for name in ("readable", "writable", "hidden"):
            value = data.get(name, [])
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise SandboxError(f"sandbox policy field '{name}' must be a list of path strings")
            fields[name] = tuple(Path(p) for p in value)
        return cls(gpu=data.get("gpu", False), **fields)


@dataclass(frozen=True)
class SandboxReport:
    """Which mechanism confines a worker, what it enforces, and in one line why it is weaker."""

    mechanism: str
    enforced: tuple[str, ...] = field(default_factory=tuple)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, as recorded in results files."""
        return {"mechanism": self.mechanism, "enforced": list(self.enforced), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SandboxReport":
        """Inverse of ``to_dict``."""
        return cls(str(data["mechanism"]), tuple(data.get("enforced", ())), str(data.get("detail", "")))


_NONE_REPORT = SandboxReport(
    "none", (), "NOT SANDBOXED: submission code runs with the harness's own file, network and process access"
)
_BWRAP_ENFORCED = (
    "filesystem", "proc", "pid-namespace", "network", "ipc", "signals", "ptrace", "capabilities", "user-namespaces",
)


def _check_mechanism(name: str, allow_auto: bool) -> None:
    choices = ("auto",) + MECHANISMS if allow_auto else MECHANISMS
    if name not in choices:
        raise SandboxError(f"unknown sandbox mechanism {name!r}: choose one of {', '.join(choices)}")


# --------------------------------------------------------------------------- paths


def base_readable_paths() -> list[Path]:
    """What any Python + torch worker needs to read: system dirs, the interpreter, site-packages
    and the ``ntire_bench`` package directory (not the repository root beside it)."""
    candidates: list[str] = ["/usr", "/etc", "/sys", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
    candidates += [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, sys.executable]
    candidates += site.getsitepackages()
    user_site = site.getusersitepackages()
    if site.ENABLE_USER_SITE and user_site:
        candidates.append(user_site)
    candidates.append(str(Path(__file__).resolve().parent))
    seen: set[str] = set()
    paths = []
    for candidate in candidates:
        absolute = os.path.abspath(candidate)
        if absolute not in seen and os.path.lexists(absolute):
            seen.add(absolute)
            paths.append(Path(absolute))
    return paths


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def carve(
    allowed: Iterable[Path], hidden: Iterable[Path], children: Callable[[Path], Iterable[str] | None]
) -> list[Path]:
    """The paths to grant so that everything under ``allowed`` is reachable except ``hidden``.

    An allowed path with no hidden path inside it is kept whole; one with a hidden path strictly
    inside is replaced by its children (``children(path)``: entry names, or None when the path
    is not a directory), each carved again; an allowed path equal to or inside a hidden one is
    dropped. Pure: the filesystem is only seen through ``children``. Result sorted, parents first.
    """
    hidden = [Path(h) for h in hidden]
    granted: set[Path] = set()
    pending = [Path(p) for p in allowed]
    while pending:
        path = pending.pop()
        if any(_is_within(path, h) for h in hidden):
            continue
        inner = [h for h in hidden if path in h.parents]
        names = children(path) if inner else None
        if names is None:
            granted.add(path)
        else:
            pending.extend(path / name for name in names)
    return sorted(granted, key=lambda p: (len(p.parts), str(p)))


def _list_children(path: Path) -> list[str] | None:
    """Directory entries of a real path (None for a non-directory or a symlink)."""
    if path.is_symlink() or not path.is_dir():
        return None
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        raise SandboxError(f"cannot list {path} to carve hidden paths out of it: {exc.strerror}") from None


def _prune_nested(paths: Iterable[Path]) -> list[Path]:
    """Drop paths that lie inside another path of the list."""
    unique = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in unique:
        if not any(_is_within(path, k) for k in kept):
            kept.append(path)
    return kept


@dataclass(frozen=True)
class _Plan:
    """A policy resolved against the filesystem: what to grant, path by path."""

    read_only: tuple[Path, ...]
    read_write: tuple[Path, ...]
    symlinks: tuple[tuple[Path, str], ...]  # (where, target text) to recreate under bubblewrap


def _symlink_chain(path: str) -> list[tuple[Path, str]]:
    """The symlinks met while resolving ``path`` component by component, as (link, target)."""
    links = []
    current = "/"
    for part in Path(path).parts[1:]:
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            links.append((Path(candidate), os.readlink(candidate)))
            current = os.path.realpath(candidate)
        else:
            current = candidate
    return links


def _plan(policy: SandboxPolicy) -> _Plan:
    """Resolve symlinks, let hidden win, carve, and collect the symlinks bubblewrap must recreate."""
    requested = (*policy.hidden, *ALWAYS_HIDDEN)
    hidden = {Path(os.path.realpath(h)) for h in requested} | {Path(os.path.abspath(h)) for h in requested}
    for name in ("readable", "writable"):
        for path in getattr(policy, name):
            real = Path(os.path.realpath(path))
            if real == Path("/"):
                raise SandboxError(f"SandboxPolicy.{name}: / would expose everything; list the directories needed")
            if _is_within(real, Path("/proc")):
                raise SandboxError(f"SandboxPolicy.{name}: {path} is under /proc, which the sandbox provides itself")
    for path in policy.writable:
        if not os.path.isdir(path):
            raise SandboxError(f"writable path {path} does not exist or is not a directory; create it first")
        real = Path(os.path.realpath(path))
        for h in hidden:
            if _is_within(real, h):
                raise SandboxError(f"writable path {path} lies inside hidden path {h}; choose a work dir elsewhere")

    def resolved(paths: Iterable[Path]) -> list[Path]:
        return _prune_nested(Path(os.path.realpath(p)) for p in paths if os.path.exists(p))

    read_write = carve(resolved(policy.writable), hidden, _list_children)
    read_only = [p for p in carve(resolved(policy.readable), hidden, _list_children)
                 if not any(_is_within(p, w) for w in read_write)]
    granted = read_only + read_write

    symlinks: dict[Path, str] = {}
    for path in (*read_only, *read_write):  # symlinks carving found inside carved directories
        if path.is_symlink():
            symlinks[path] = os.readlink(path)
    for raw in (*policy.readable, *policy.writable):  # /lib -> usr/lib and the like
        if not os.path.exists(raw):
            continue
        for link, target in _symlink_chain(os.path.abspath(raw)):
            inside_grant = any(g in link.parents for g in granted)
            if not inside_grant and not any(_is_within(link, h) for h in hidden):
                symlinks.setdefault(link, target)
    return _Plan(tuple(p for p in read_only if p not in symlinks), tuple(p for p in read_write if p not in symlinks),
                 tuple(sorted(symlinks.items())))


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


def _gpu_device_nodes() -> list[str]:
    return sorted(glob.glob("/dev/nvidia*"))


def _bwrap_argv(argv: list[str], policy: SandboxPolicy, report: SandboxReport) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap: bwrap is not on PATH; install the 'bubblewrap' package or use --sandbox landlock")
    plan = _plan(policy)
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
        for node in _gpu_device_nodes():
            args += ["--dev-bind", node, node]
    # bwrap mounts a fresh /dev; devices come in through gpu=True only.
    read_only = [p for p in plan.read_only if not _is_within(p, Path("/dev"))]
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
    report = SandboxReport("bubblewrap", _BWRAP_ENFORCED, _bwrap_detail())
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


# --------------------------------------------------------------------------- landlock

_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_MAKE_CHAR, _FS_MAKE_BLOCK = 1 << 6, 1 << 11
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
# Rights that make sense on a non-directory; the kernel rejects directory rights on files.
_FS_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_FS_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_FS_WRITE = (_FS_ABI1 | _FS_REFER | _FS_TRUNCATE) & ~(_FS_MAKE_CHAR | _FS_MAKE_BLOCK)
_FS_DEVICE = _FS_READ_FILE | _FS_WRITE_FILE | _FS_IOCTL_DEV

# What a confined Python + torch process reads under /proc and /dev besides its own /proc/self.
_PROC_READABLE = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/sys")
_DEV_RULES = (("/dev/null", _FS_READ_FILE | _FS_WRITE_FILE), ("/dev/zero", _FS_READ_FILE),
              ("/dev/full", _FS_READ_FILE | _FS_WRITE_FILE), ("/dev/random", _FS_READ_FILE),
              ("/dev/urandom", _FS_READ_FILE))

_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# seccomp: Landlock (ABI <= 7) does not cover connecting to named Unix sockets (a root worker
# could reach e.g. /run/docker.sock) nor creating user namespaces; a small filter does.
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_JSET_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_SECCOMP_NR, _SECCOMP_ARCH, _SECCOMP_ARG0 = 0, 4, 16  # offsets in struct seccomp_data (little-endian arg0)
_X32_SYSCALL_BIT = 0x40000000
_AF_UNIX = 1
# machine -> (AUDIT_ARCH, socket, unshare, clone); io_uring_setup (425) and clone3 (435) are shared numbers.
_SECCOMP_ARCHES = {"x86_64": (0xC000003E, 41, 272, 56), "aarch64": (0xC00000B7, 198, 97, 220)}
_SYS_IO_URING_SETUP, _SYS_CLONE3 = 425, 435


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def landlock_abi() -> int:
    """The highest Landlock ABI the running kernel offers (0: none)."""
    if not sys.platform.startswith("linux"):
        return 0
    abi = _libc().syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                          ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(abi), 0)


def _landlock_handled(abi: int) -> tuple[_RulesetAttr, int]:
    """The ruleset attribute handling everything ``abi`` knows, and its size for that ABI."""
    fs = _FS_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0) \
        | (_FS_IOCTL_DEV if abi >= 5 else 0)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    return _RulesetAttr(fs, net, scoped), size


def _landlock_enforced(abi: int) -> list[str]:
    enforced = ["filesystem", "ptrace"]
    if abi >= 4:
        enforced.append("network-tcp")
    if abi >= 6:
        enforced += ["signals", "abstract-unix-sockets"]
    return enforced


def _landlock_gaps(abi: int) -> list[str]:
    gaps = []
    if abi < 4:
        gaps.append(f"TCP not restricted (ABI {abi} < 4)")
    if abi < 6:
        gaps.append(f"signals and abstract unix sockets not scoped (ABI {abi} < 6)")
    return gaps


def _landlock_rules(plan: _Plan, gpu: bool) -> list[tuple[str, int]]:
    rules = [(str(p), _FS_READ) for p in plan.read_only] + [(str(p), _FS_READ | _FS_WRITE) for p in plan.read_write]
    rules += [(p, _FS_READ_FILE | _FS_READ_DIR) for p in _PROC_READABLE if os.path.exists(p)]
    rules += [(p, access) for p, access in _DEV_RULES if os.path.exists(p)]
    if gpu:
        rules += [(node, _FS_DEVICE | _FS_READ_DIR) for node in _gpu_device_nodes()]
        if os.path.isdir("/proc/driver/nvidia"):
            rules.append(("/proc/driver/nvidia", _FS_READ_FILE | _FS_READ_DIR))
    return rules


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _private_network(libc: ctypes.CDLL) -> str | None:
    """Move into a new, empty network namespace; None on success, else why not."""
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:
        return None if libc.unshare(_CLONE_NEWNET) == 0 else _errno_text()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return _errno_text()
    try:  # show the same uid/gid inside; file access uses the real ids either way
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    except OSError:
        pass  # e.g. an LSM denying capabilities in new user namespaces: ids then read as 65534
    return None


def _drop_capabilities(libc: ctypes.CDLL) -> str | None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets; None on success, else why not."""
    try:
        last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        last_cap = 63
    for cap in range(last_cap + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EPERM without CAP_SETPCAP: nothing to drop then
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    return None if libc.capset(ctypes.byref(header), data) == 0 else _errno_text()


def _seccomp_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """BPF (code, jt, jf, k) denying socket(AF_UNIX), io_uring, clone3 and CLONE_NEWUSER; None if
    the machine is not supported. Foreign syscall ABIs (i386 via int 0x80, x32) are refused."""
    if machine not in _SECCOMP_ARCHES:
        return None
    audit_arch, sys_socket, sys_unshare, sys_clone = _SECCOMP_ARCHES[machine]
    errno = lambda number: _SECCOMP_RET_ERRNO | number  # noqa: E731
    # Symbolic jump targets, resolved into relative offsets below.
    program: list[tuple[int, Any, Any, int]] = [
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARCH),
        (_BPF_JEQ_K, "native", "eperm", audit_arch),
        ("native", _BPF_LD_W_ABS, 0, 0, _SECCOMP_NR),
        (_BPF_JGE_K, "eperm", 0, _X32_SYSCALL_BIT),
        (_BPF_JEQ_K, "socket", 0, sys_socket),
        (_BPF_JEQ_K, "eperm", 0, _SYS_IO_URING_SETUP),
        (_BPF_JEQ_K, "enosys", 0, _SYS_CLONE3),  # its flags live in memory; libc falls back to clone
        (_BPF_JEQ_K, "flags", 0, sys_unshare),
        (_BPF_JEQ_K, "flags", 0, sys_clone),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
        ("socket", _BPF_LD_W_ABS, 0, 0, _SECCOMP_ARG0),
        (_BPF_JEQ_K, "eacces", 0, _AF_UNIX),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
        ("flags", _BPF_LD_W_ABS, 0, 0, _SECCOMP_ARG0),
        (_BPF_JSET_K, "eperm", 0, _CLONE_NEWUSER),
        (_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
        ("eacces", _BPF_RET_K, 0, 0, errno(13)),
        ("eperm", _BPF_RET_K, 0, 0, errno(1)),
        ("enosys", _BPF_RET_K, 0, 0, errno(38)),
    ]
    labels = {}
    for index, instruction in enumerate(program):
        if isinstance(instruction[0], str):
            labels[instruction[0]] = index
            program[index] = instruction[1:]
    resolve = lambda target, index: labels[target] - index - 1 if isinstance(target, str) else target  # noqa: E731
    return [(code, resolve(jt, i), resolve(jf, i), k) for i, (code, jt, jf, k) in enumerate(program)]


def _apply_seccomp(libc: ctypes.CDLL) -> str | None:
    """Install the filter on this thread; None on success, else why not."""
    program = _seccomp_program(os.uname().machine)
    if program is None:
        return f"no seccomp filter for {os.uname().machine}"
    filters = (_SockFilter * len(program))(*(_SockFilter(*instruction) for instruction in program))
    fprog = _SockFprog(len(program), filters)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return _errno_text()
    return None


# Kept open for the life of the process: procfs allocates a new inode for /proc/<pid> when its
# dentry is evicted, which would silently drop the Landlock rule attached to the old one.
_PINNED_FDS: list[int] = []


def apply_landlock(policy: SandboxPolicy) -> SandboxReport:
    """Confine this process (irreversibly) to ``policy`` with Landlock, at the best ABI offered.

    Must run while the process has a single thread: Landlock, ``no_new_privs`` and
    capabilities apply to the calling thread only. Raises SandboxError if it cannot enforce
    the file whitelist; weaker parts missing on old kernels are listed in the report's detail.
    """
    if not sys.platform.startswith("linux"):
        raise SandboxError("landlock: only available on Linux")
    threads = _thread_count()
    if threads != 1:
        raise SandboxError(
            f"landlock: this process already runs {threads} threads; enter the sandbox before importing numpy or torch"
        )
    abi = landlock_abi()
    if abi < 1:
        raise SandboxError("landlock: the kernel does not offer Landlock (needs Linux >= 5.13 with lsm=landlock)")
    libc = _libc()
    attr, size = _landlock_handled(abi)
    rules = _landlock_rules(_plan(policy), policy.gpu)

    network_failure = _private_network(libc)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SandboxError(f"landlock: prctl(PR_SET_NO_NEW_PRIVS) failed: {_errno_text()}")
    ruleset = libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(f"landlock: creating the ruleset (ABI {abi}) failed: {_errno_text()}")
    try:
        self_fd = os.open("/proc/self", os.O_PATH | os.O_CLOEXEC)
        _PINNED_FDS.append(self_fd)
        _add_rule(libc, ruleset, self_fd, "/proc/self", _FS_READ_FILE | _FS_READ_DIR, attr.handled_access_fs)
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # vanished since planning: nothing to grant
            try:
                _add_rule(libc, ruleset, fd, path, access, attr.handled_access_fs)
            finally:
                os.close(fd)
        capabilities_failure = _drop_capabilities(libc)
        if libc.syscall(ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise SandboxError(f"landlock: landlock_restrict_self failed: {_errno_text()}")
    finally:
        os.close(ruleset)
    seccomp_failure = _apply_seccomp(libc)

    enforced = _landlock_enforced(abi) + ["no-new-privs"]
    gaps = _landlock_gaps(abi)
    if capabilities_failure is None:
        enforced.append("capabilities")
    else:
        gaps.append(f"capabilities not dropped ({capabilities_failure})")
    if seccomp_failure is None:
        enforced += ["unix-sockets", "user-namespaces"]
    else:
        gaps.append(f"named unix sockets and user namespaces not blocked ({seccomp_failure})")
    if network_failure is None:
        enforced.append("network-namespace")
    else:
        gaps.append(f"no private network namespace ({network_failure}): UDP and named sockets stay reachable")
    detail = f"landlock ABI {abi}: {len(rules) + 1} path rules, work dir writable, " + (
        "; ".join(gaps) if gaps else "TCP denied, signals and abstract unix sockets scoped")
    return SandboxReport("landlock", tuple(enforced), detail)


def _add_rule(libc: ctypes.CDLL, ruleset: int, fd: int, path: str, access: int, handled: int) -> None:
    access &= handled
    if not os.path.isdir(f"/proc/self/fd/{fd}"):
        access &= _FS_FILE_RIGHTS
    if not access:
        return
    rule = _PathBeneathAttr(access, fd)
    if libc.syscall(ctypes.c_long(_SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                    ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
        raise SandboxError(f"landlock: adding a rule for {path} failed: {_errno_text()}")


def _probe_landlock() -> SandboxReport:
    abi = landlock_abi()
    if abi < 1:
        raise SandboxError("landlock: the kernel does not offer Landlock (needs Linux >= 5.13 with lsm=landlock)")
    libc = _libc()
    attr, size = _landlock_handled(abi)
    ruleset = libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise SandboxError(f"landlock: the kernel refused a ruleset for ABI {abi}: {_errno_text()}")
    os.close(ruleset)
    gaps = _landlock_gaps(abi)
    detail = f"landlock ABI {abi}: file whitelist applied by the worker itself at start-up" + (
        "; " + "; ".join(gaps) if gaps else "; TCP denied, signals and abstract unix sockets scoped")
    return SandboxReport("landlock", tuple(_landlock_enforced(abi) + ["no-new-privs", "capabilities"]), detail)


# --------------------------------------------------------------------------- public entry points

_PROBES: dict[str, SandboxReport | SandboxError] = {}
_PROBERS = {"bubblewrap": _probe_bubblewrap, "landlock": _probe_landlock, "none": lambda: _NONE_REPORT}


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
    _check_mechanism(requested, allow_auto=True)
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
    _check_mechanism(mechanism, allow_auto=False)
    if not argv:
        raise SandboxError("wrap: empty command")
    if mechanism == "bubblewrap":
        report = report or SandboxReport("bubblewrap", _BWRAP_ENFORCED, _bwrap_detail())
        return _bwrap_argv(list(argv), policy, report), {}
    if mechanism == "none":
        return list(argv), {ENV_VAR: json.dumps({"mechanism": "none"})}
    plan = _plan(policy)
    carved = SandboxPolicy(readable=plan.read_only, writable=plan.read_write, gpu=policy.gpu)
    payload = json.dumps({"mechanism": "landlock", "policy": json.loads(carved.to_json())})
    if len(payload.encode()) >= _MAX_ENV_BYTES:
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
    _check_mechanism(mechanism, allow_auto=False)
    if mechanism == "landlock":
        report = apply_landlock(SandboxPolicy.from_json(json.dumps(request.get("policy", {}))))
    elif mechanism == "bubblewrap":
        if not _looks_confined():
            raise SandboxError(f"{ENV_VAR} says bubblewrap but this process holds capabilities or is not PID 1")
        report = SandboxReport.from_dict(request["report"])
    else:
        report = _NONE_REPORT
    _ENTERED.append(report)
    return report


def _looks_confined() -> bool:
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return os.getpid() == 1 and int(status["CapEff"], 16) == 0 and status["NoNewPrivs"].strip() == "1"
    except (OSError, KeyError, ValueError):
        return False


def main(argv: list[str] | None = None) -> None:
    """``python -m ntire_bench.sandbox MODULE [ARGS]``: enter the sandbox, then run MODULE as __main__."""
    import runpy

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m ntire_bench.sandbox MODULE [ARGS...]")
    # Run as __main__, this file is a second copy of the module: enter through the importable
    # one, so that MODULE's own enter_from_environment() call gets the report back.
    from ntire_bench import sandbox

    try:
        sandbox.enter_from_environment()
    except sandbox.SandboxError as exc:
        raise SystemExit(f"sandbox: {exc}") from None
    sys.argv = args
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
