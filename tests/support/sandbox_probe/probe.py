"""A hostile-but-honest worker for tests/unit/sandbox/test_sandbox.py: enters the sandbox, tries every escape
it knows, checks that ordinary work still succeeds, and prints one JSON object on stdout.

Usage: python probe.py CONFIG_JSON. Each attack records {"denied": bool, "detail": str}; each
legitimate action {"ok": bool, "detail": str}.
"""

from __future__ import annotations

import json
import sys

from ntire_bench.sandbox import enter_from_environment  # first: before numpy/torch start threads

REPORT = enter_from_environment()

import ctypes  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

CONFIG = json.loads(sys.argv[1])
LIBC = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH, MNT_DETACH, CLONE_NEWUSER = 16, 17, 2, 0x10000000
attacks: dict[str, dict] = {}
legit: dict[str, dict] = {}
WALKED: list[int] = []  # files seen per directory by the filesystem walk


def attack(name: str, action) -> None:
    """Run an escape attempt: it is denied when it raises OSError or returns False."""
    try:
        result = action()
    except OSError as exc:
        attacks[name] = {"denied": True, "detail": f"{type(exc).__name__}: {exc}"}
        return
    attacks[name] = {"denied": result is False, "detail": repr(result)[:300]}


def libc_call(name: str, *args) -> bool:
    """A libc call as an attack: False (denied) when it returns -1."""
    if getattr(LIBC, name)(*args) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return True


def legitimate(name: str, action) -> None:
    try:
        legit[name] = {"ok": True, "detail": repr(action())[:300]}
    except Exception as exc:  # noqa: BLE001 - report anything
        legit[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(64)


def write(path: str) -> str:
    with open(path, "w") as handle:
        handle.write("pwned")
    return path


def unix_connect(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
        client.sendall(b"hello from the sandbox")
    return True


def walk_for(names: set[str]) -> list[str]:
    """Search the whole visible filesystem (but procfs/sysfs) and read whatever matches."""
    found = []
    for root, dirs, files in os.walk("/", onerror=lambda exc: None):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys")]
        WALKED.append(len(files))
        for name in names.intersection(files):
            try:
                found.append(f"{os.path.join(root, name)}: {read(os.path.join(root, name))[:8]!r}")
            except OSError:
                pass
    return found or False


for i, hidden in enumerate(CONFIG["hidden_files"]):
    attack(f"read_hidden_{i}", lambda p=hidden: read(p))
    attack(f"list_hidden_dir_{i}", lambda p=hidden: os.listdir(os.path.dirname(p)))
    attack(f"write_hidden_dir_{i}", lambda p=hidden: write(os.path.join(os.path.dirname(p), "pwned.txt")))
attack("read_hidden_via_symlink", lambda: read(CONFIG["symlink_to_hidden_file"]))
attack("read_etc_shadow", lambda: read("/etc/shadow"))  # root-owned: a root worker keeps uid 0
attack("walk_filesystem", lambda: walk_for({Path(p).name for p in CONFIG["hidden_files"]}))

for label, pid in (("parent", CONFIG["parent_pid"]), ("ppid", os.getppid())):
    if pid <= 1 and label == "ppid":
        continue  # bubblewrap: the worker is PID 1 and has no visible parent
    proc = f"/proc/{pid}"
    attack(f"{label}_cwd", lambda p=proc: os.listdir(f"{p}/cwd"))
    attack(f"{label}_cwd_file", lambda p=proc: read(f"{p}/cwd/{CONFIG['parent_cwd_file']}"))
    attack(f"{label}_root_hidden", lambda p=proc: read(f"{p}/root{CONFIG['hidden_files'][1]}"))
    attack(f"{label}_environ", lambda p=proc: read(f"{p}/environ"))
    attack(f"{label}_cmdline", lambda p=proc: read(f"{p}/cmdline"))
    attack(f"{label}_fd_list", lambda p=proc: os.listdir(f"{p}/fd"))
    attack(f"{label}_fd_open", lambda p=proc: [read(f"{p}/fd/{n}") for n in range(3)])
    attack(f"{label}_mem", lambda p=proc: read(f"{p}/mem"))
    attack(f"{label}_signal", lambda p=pid: os.kill(p, 0))

sibling = CONFIG["sibling_pid"]
attack("sibling_signal", lambda: os.kill(sibling, signal.SIGTERM))
attack("sibling_ptrace", lambda: libc_call("ptrace", PTRACE_ATTACH, sibling, None, None)
       and LIBC.ptrace(PTRACE_DETACH, sibling, None, None) is not None)
attack("write_readable_dir", lambda: write(os.path.join(CONFIG["readable_dir"], "pwned.txt")))
attack("write_harness_package", lambda: write(os.path.join(os.path.dirname(sys.modules["ntire_bench.sandbox"].__file__), "pwned.py")))
attack("write_host_tmp", lambda: write(CONFIG["host_tmp_marker"]))
attack("tcp_connect", lambda: socket.create_connection(("127.0.0.1", CONFIG["tcp_port"]), timeout=3).close())
attack("unix_connect", lambda: unix_connect(CONFIG["unix_socket"]))
attack("mount", lambda: libc_call("mount", b"none", CONFIG["work_dir"].encode(), b"tmpfs", 0, None))
attack("umount", lambda: libc_call("umount2", CONFIG["readable_dir"].encode(), MNT_DETACH))
attack("chroot", lambda: libc_call("chroot", CONFIG["work_dir"].encode()))
attack("new_user_namespace", lambda: libc_call("unshare", CLONE_NEWUSER))
attack("widen_cpu_affinity", lambda: os.sched_setaffinity(0, range(os.cpu_count() or 1)))


def torch_work() -> float:
    import torch

    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    torch.manual_seed(0)
    return float(conv(torch.ones(1, 3, 8, 8)).shape.numel())


def harness_import() -> str:
    import ntire_bench.worker

    return ntire_bench.worker.__name__


def load_checkpoint() -> float:
    import torch

    return float(torch.load(CONFIG["checkpoint"], weights_only=True)["weight"].sum())


def work_dir_roundtrip() -> str:
    path = os.path.join(CONFIG["work_dir"], "result.txt")
    write(path)
    with tempfile.NamedTemporaryFile(dir=None) as scratch:  # TMPDIR or /tmp, whichever is private
        scratch.write(b"x")
    return path


legitimate("walk_saw_files", lambda: sum(WALKED))
legitimate("import_torch", torch_work)
legitimate("import_ntire_bench", harness_import)
legitimate("read_readable_file", lambda: Path(CONFIG["readable_file"]).read_text())
legitimate("load_checkpoint", load_checkpoint)
legitimate("write_work_dir", work_dir_roundtrip)

print(json.dumps({"report": REPORT.to_dict() if REPORT else None, "attacks": attacks, "legit": legit}))
