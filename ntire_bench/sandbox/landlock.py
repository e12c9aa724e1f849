"""The Landlock mechanism: a worker confines itself (file whitelist, TCP, signals, seccomp, capabilities).

Applied by the worker to itself while it still has one thread (Landlock, seccomp and capability
changes bind only the calling thread), from ``sandbox.enter_from_environment``. Standard
library only (ctypes).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from pathlib import Path
from typing import Any

from ntire_bench.sandbox.policy import PathPlan, SandboxError, SandboxPolicy, SandboxReport, plan_paths


def gpu_device_nodes() -> list[str]:
    return sorted(glob.glob("/dev/nvidia*"))


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
# machine -> (AUDIT_ARCH, socket, unshare, clone, sched_setaffinity); io_uring_setup (425) and clone3 (435) are
# shared numbers. sched_setaffinity is refused so that a worker pinned to its cores cannot widen the set.
_SECCOMP_ARCHES = {"x86_64": (0xC000003E, 41, 272, 56, 203), "aarch64": (0xC00000B7, 198, 97, 220, 122)}
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


def _landlock_rules(plan: PathPlan, gpu: bool) -> list[tuple[str, int]]:
    rules = [(str(p), _FS_READ) for p in plan.read_only] + [(str(p), _FS_READ | _FS_WRITE) for p in plan.read_write]
    rules += [(p, _FS_READ_FILE | _FS_READ_DIR) for p in _PROC_READABLE if os.path.exists(p)]
    rules += [(p, access) for p, access in _DEV_RULES if os.path.exists(p)]
    if gpu:
        rules += [(node, _FS_DEVICE | _FS_READ_DIR) for node in gpu_device_nodes()]
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


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]] | None:
    """BPF (code, jt, jf, k) denying socket(AF_UNIX), io_uring, clone3, CLONE_NEWUSER and sched_setaffinity;
    None if the machine is not supported. Foreign syscall ABIs (i386 via int 0x80, x32) are refused."""
    if machine not in _SECCOMP_ARCHES:
        return None
    audit_arch, sys_socket, sys_unshare, sys_clone, sys_setaffinity = _SECCOMP_ARCHES[machine]
    errno = lambda number: _SECCOMP_RET_ERRNO | number  # noqa: E731
    # Symbolic jump targets, resolved into relative offsets below.
    program: list[tuple[int, Any, Any, int]] = [
        (_BPF_LD_W_ABS, 0, 0, _SECCOMP_ARCH),
        (_BPF_JEQ_K, "native", "eperm", audit_arch),
        ("native", _BPF_LD_W_ABS, 0, 0, _SECCOMP_NR),
        (_BPF_JGE_K, "eperm", 0, _X32_SYSCALL_BIT),
        (_BPF_JEQ_K, "socket", 0, sys_socket),
        (_BPF_JEQ_K, "eperm", 0, _SYS_IO_URING_SETUP),
        (_BPF_JEQ_K, "eperm", 0, sys_setaffinity),
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


def apply_seccomp(libc: ctypes.CDLL | None = None) -> str | None:
    """Install the filter on this thread (and the threads it starts); None on success, else why not."""
    libc = libc or _libc()
    program = seccomp_program(os.uname().machine)
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
    rules = _landlock_rules(plan_paths(policy), policy.gpu)

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
    seccomp_failure = apply_seccomp(libc)

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


def probe_landlock() -> SandboxReport:
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
