"""The OS sandbox for submission workers: a hostile probe run under each mechanism available here
must be denied every escape (hidden files, /proc of its parent, signals, ptrace, network,
writes, mounts) while ordinary work (torch, the harness, checkpoints, the work dir) still runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import torch

from ntire_bench import sandbox
from ntire_bench.sandbox import confine
from ntire_bench.sandbox import landlock as sandbox_landlock
from ntire_bench.util.paths import PACKAGE_DIR
from ntire_bench.sandbox import (ENV_VAR, SandboxError, SandboxPolicy, SandboxReport, base_readable_paths, carve, enter_from_environment, probe, wrap)

from support.paths import REPO as REPO_ROOT
from support.paths import PROBE_DIR
ENFORCING = ("bubblewrap", "landlock")


def _available(mechanism: str) -> None:
    try:
        probe(mechanism)
    except SandboxError as exc:
        pytest.skip(f"{mechanism} is not available on this machine: {exc}")


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """What a worker gets: PATH, the source tree on PYTHONPATH (as worker.child_environment does)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT), **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A submission dir with a dataset hidden *inside* it, a dataset and results dir beside it."""
    root = tmp_path_factory.mktemp("sandbox")
    submission = root / "submission"
    inside = submission / "dataset_inside" / "HR"
    beside = root / "dataset_beside" / "HR"
    results = root / "results"
    for folder in (inside, beside, results):
        folder.mkdir(parents=True)
    (inside / "hr_inside_0001.png").write_bytes(b"\x89PNG secret inside")
    (beside / "hr_beside_0001.png").write_bytes(b"\x89PNG secret beside")
    (results / "scores.json").write_text('{"secret": true}')
    (submission / "notes.txt").write_text("readable ok\n")
    torch.save({"weight": torch.ones(3)}, submission / "model.pth")
    (submission / "link_to_hr").symlink_to(beside)  # a submission shipping a symlink to the HR dir
    return {
        "root": root, "submission": submission, "results": results,
        "hidden": (submission / "dataset_inside", root / "dataset_beside", results),
        "hidden_files": [inside / "hr_inside_0001.png", beside / "hr_beside_0001.png", results / "scores.json"],
    }


def _run_probe(world, mechanism: str) -> dict:
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="ntire-bench-", dir=shm))
    policy = SandboxPolicy(
        readable=(*base_readable_paths(), world["submission"], PROBE_DIR), writable=(work,), hidden=world["hidden"]
    )
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    unix_listener = socket.socket(socket.AF_UNIX)  # a daemon's control socket, e.g. /run/docker.sock
    unix_path = Path(tempfile.mkdtemp(prefix="nb-")) / "ctl.sock"  # short: AF_UNIX paths max out at 107 bytes
    unix_listener.bind(str(unix_path))
    unix_listener.listen()
    unix_listener.setblocking(False)
    marker = Path(tempfile.gettempdir()) / f"ntire-bench-probe-{uuid.uuid4().hex}"
    config = {
        "hidden_files": [str(p) for p in world["hidden_files"]],
        "symlink_to_hidden_file": str(world["submission"] / "link_to_hr" / "hr_beside_0001.png"),
        "parent_pid": os.getpid(), "parent_cwd_file": "scores.json", "sibling_pid": sibling.pid,
        "readable_dir": str(world["submission"]), "readable_file": str(world["submission"] / "notes.txt"),
        "checkpoint": str(world["submission"] / "model.pth"), "host_tmp_marker": str(marker),
        "tcp_port": listener.getsockname()[1], "unix_socket": str(unix_path), "work_dir": str(work),
    }
    argv, env = wrap([sys.executable, str(PROBE_DIR / "probe.py"), json.dumps(config)], policy, mechanism)
    cwd = os.getcwd()
    os.chdir(world["results"])  # the parent sits in the results dir: /proc/<ppid>/cwd must not lead there
    try:
        done = subprocess.run(argv, env=_child_env(env), cwd=work, capture_output=True, text=True, timeout=120)
    finally:
        os.chdir(cwd)
        accepted = []
        for server in (listener, unix_listener):
            try:
                server.accept()
                accepted.append(server.family.name)
            except BlockingIOError:
                pass
            server.close()
        unix_path.unlink()
        unix_path.parent.rmdir()
        sibling_alive = sibling.poll() is None
        sibling.kill()
        sibling.wait()
    assert done.returncode == 0, f"probe failed under {mechanism}: {done.stderr[-2000:]}"
    outcome = json.loads(done.stdout)
    outcome.update(
        work=work, accepted=accepted, sibling_alive=sibling_alive, marker_exists=marker.exists(),
        written=[p for p in world["root"].rglob("pwned*")] + list(PACKAGE_DIR.rglob("pwned*")),
    )
    marker.unlink(missing_ok=True)
    return outcome


@pytest.fixture(scope="module", params=ENFORCING)
def probed(request, world):
    _available(request.param)
    outcome = _run_probe(world, request.param)
    yield request.param, outcome
    shutil.rmtree(outcome["work"], ignore_errors=True)


# --------------------------------------------------------------------------- real children


def test_every_escape_is_denied(probed):
    mechanism, outcome = probed
    allowed = {name: a["detail"] for name, a in outcome["attacks"].items() if not a["denied"]}
    if mechanism == "bubblewrap":
        # Writes into a carved directory or /tmp land on the sandbox's private tmpfs; the host
        # side is checked below instead.
        allowed.pop("write_readable_dir", None)
        allowed.pop("write_host_tmp", None)
    assert not allowed, f"{mechanism} let these through: {allowed}"
    expected = {"read_hidden_0", "read_hidden_1", "read_hidden_2", "read_hidden_via_symlink", "walk_filesystem",
                "parent_cwd_file", "parent_root_hidden", "parent_environ", "parent_cmdline", "parent_fd_open",
                "parent_mem", "parent_signal", "sibling_signal", "sibling_ptrace", "tcp_connect", "mount", "umount",
                "chroot", "write_harness_package", "write_hidden_dir_0", "unix_connect",
                "new_user_namespace", "read_etc_shadow", "widen_cpu_affinity"}
    assert expected <= set(outcome["attacks"]), "the probe skipped some attacks"
    assert outcome["written"] == [], "files appeared on the host outside the work dir"
    assert not outcome["marker_exists"], "the child wrote into the host's /tmp"
    assert outcome["sibling_alive"], "the child killed a neighbour process"
    assert outcome["accepted"] == [], "the child reached a listening socket on the host"


def test_landlocked_child_cannot_use_its_parents_proc(probed):
    mechanism, outcome = probed
    if mechanism != "landlock":
        pytest.skip("under bubblewrap the parent is not in the child's PID namespace at all")
    attacks = outcome["attacks"]
    for name in ("ppid_environ", "ppid_cwd", "ppid_cwd_file", "ppid_fd_list", "ppid_fd_open", "ppid_mem"):
        assert attacks[name]["denied"] and "Permission denied" in attacks[name]["detail"], (name, attacks[name])


def test_bubblewrap_child_does_not_see_the_host(probed):
    mechanism, outcome = probed
    if mechanism != "bubblewrap":
        pytest.skip("bubblewrap only")
    attacks = outcome["attacks"]
    assert "No such file" in attacks["read_hidden_0"]["detail"]  # carved away, not merely forbidden
    assert "No such file" in attacks["parent_environ"]["detail"]  # the host PID does not exist here
    assert attacks["new_user_namespace"]["denied"]
    assert "Read-only file system" in attacks["write_harness_package"]["detail"]
    assert int(outcome["legit"]["walk_saw_files"]["detail"]) > 1000  # the walk really searched /usr and co.


def test_legitimate_work_still_runs(probed):
    mechanism, outcome = probed
    failed = {name: r["detail"] for name, r in outcome["legit"].items() if not r["ok"]}
    assert not failed, f"{mechanism} broke ordinary work: {failed}"
    assert outcome["legit"]["import_torch"]["detail"] == "256.0"  # 1x4x8x8 output elements
    assert outcome["legit"]["read_readable_file"]["detail"] == repr("readable ok\n")
    assert outcome["legit"]["load_checkpoint"]["detail"] == "3.0"
    assert (outcome["work"] / "result.txt").read_text() == "pwned"  # the work dir is shared with the host


def test_child_reports_its_mechanism(probed):
    mechanism, outcome = probed
    report = SandboxReport.from_dict(outcome["report"])
    assert report.mechanism == mechanism
    assert {"filesystem", "ptrace"} <= set(report.enforced)
    if mechanism == "bubblewrap":
        assert {"pid-namespace", "network", "capabilities"} <= set(report.enforced)
    elif sandbox.landlock_abi() >= 6:
        assert {"network-tcp", "signals", "abstract-unix-sockets", "no-new-privs"} <= set(report.enforced)
    if mechanism == "landlock" and os.uname().machine in ("x86_64", "aarch64"):
        assert {"unix-sockets", "user-namespaces", "capabilities"} <= set(report.enforced)


def test_hidden_names_never_reach_the_child(world):
    """Neither bwrap's argv nor the Landlock policy in the environment names a hidden path."""
    work = Path(tempfile.mkdtemp(prefix="ntire-bench-"))
    policy = SandboxPolicy(readable=(world["submission"],), writable=(work,), hidden=world["hidden"])
    argv, env = wrap(["true"], policy, "landlock")
    carried = json.loads(env[ENV_VAR])["policy"]
    assert carried["hidden"] == []
    # dataset_inside is carved out; the symlink is left to its target's own rules.
    assert carried["readable"] == [str(world["submission"] / "model.pth"), str(world["submission"] / "notes.txt")]
    assert carried["writable"] == [str(work.resolve())] and env["HOME"] == env["TMPDIR"] == str(work.resolve())
    leaked = [str(h) for h in world["hidden"] if str(h) in env[ENV_VAR]]
    assert not leaked
    if shutil.which("bwrap"):
        argv, _ = wrap(["true"], policy, "bubblewrap")
        assert not [h for h in world["hidden"] if any(str(h) == a for a in argv)]
        assert ["--symlink", str(world["root"] / "dataset_beside" / "HR"), str(world["submission"] / "link_to_hr")] \
            == argv[argv.index("--symlink"):argv.index("--symlink") + 3]
    work.rmdir()


def test_killing_bwrap_kills_the_sandboxed_child(tmp_path):
    _available("bubblewrap")
    token = f"{60 + uuid.uuid4().int % 1000 / 1000:.3f}"  # a unique sleep duration to find the child by
    policy = SandboxPolicy(readable=tuple(base_readable_paths()), writable=(tmp_path,))
    argv, env = wrap(["sleep", token], policy, "bubblewrap")
    bwrap = subprocess.Popen(argv, env=_child_env(env), start_new_session=True)

    def sandboxed_pids() -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "cmdline").read_bytes() == f"sleep\0{token}\0".encode():
                    pids.append(int(entry.name))
            except OSError:
                pass
        return pids

    deadline = time.monotonic() + 10
    while not sandboxed_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandboxed_pids(), "the sandboxed command never started"
    os.killpg(bwrap.pid, signal.SIGKILL)  # what IsolatedWorker does on a timeout
    bwrap.wait()
    deadline = time.monotonic() + 5
    while sandboxed_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandboxed_pids(), "the sandboxed child outlived bwrap"


def test_sandbox_entry_point_runs_a_module_confined(tmp_path):
    """``python -m ntire_bench.sandbox MODULE`` enters first; MODULE's own call gets the report."""
    _available("landlock")
    policy = SandboxPolicy(readable=(*base_readable_paths(), PROBE_DIR), writable=(tmp_path,))
    argv, env = wrap([sys.executable, "-m", "ntire_bench.sandbox", "echo_report"], policy, "landlock")
    extra = _child_env(env)
    extra["PYTHONPATH"] = f"{PROBE_DIR}{os.pathsep}{extra['PYTHONPATH']}"
    done = subprocess.run(argv, env=extra, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["report"]["mechanism"] == "landlock" and result["env_cleared"]


def test_landlock_refuses_a_threaded_process(tmp_path):
    _available("landlock")
    code = textwrap.dedent(f"""
        import threading, time
        from ntire_bench.sandbox import SandboxError, SandboxPolicy, apply_landlock
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        try:
            apply_landlock(SandboxPolicy(writable=({str(tmp_path)!r},)))
        except SandboxError as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == ("landlock: this process already runs 2 threads; "
                                   "enter the sandbox before importing numpy or torch")


# --------------------------------------------------------------------------- mechanism choice


def test_none_mechanism_reports_itself_visibly(tmp_path):
    report = probe("none")
    assert report.mechanism == "none" and report.enforced == ()
    assert report.detail.startswith("NOT SANDBOXED")
    argv, env = wrap(["python", "-c", "pass"], SandboxPolicy(writable=(tmp_path,)), "none")
    assert argv == ["python", "-c", "pass"]
    code = "from ntire_bench.sandbox import enter_from_environment as e; print(e().to_dict())"
    done = subprocess.run([sys.executable, "-c", code], env=_child_env(env), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "'mechanism': 'none'" in done.stdout and "NOT SANDBOXED" in done.stdout


def test_auto_picks_the_strongest_working_mechanism():
    working = []
    for mechanism in ("bubblewrap", "landlock", "none"):
        try:
            probe(mechanism)
            working.append(mechanism)
        except SandboxError:
            pass
    report = probe("auto")
    assert report.mechanism == working[0]
    if working[0] != "bubblewrap":
        assert "weaker:" in report.detail  # says why the stronger mechanisms were passed over


def test_auto_falls_back_and_says_why_when_bwrap_is_missing(monkeypatch):
    monkeypatch.setattr(confine, "_PROBES", {})
    monkeypatch.setattr(confine.shutil, "which", lambda name, *args, **kwargs: None)
    with pytest.raises(SandboxError, match="^bubblewrap: bwrap is not on PATH"):
        probe("bubblewrap")
    report = probe("auto")
    assert report.mechanism in ("landlock", "none")
    assert "(weaker: bubblewrap: bwrap is not on PATH" in report.detail


def test_auto_ends_at_none_and_says_so_when_nothing_works(monkeypatch):
    monkeypatch.setattr(confine, "_PROBES", {})
    monkeypatch.setattr(confine.shutil, "which", lambda name, *args, **kwargs: None)
    monkeypatch.setattr(sandbox_landlock, "landlock_abi", lambda: 0)
    with pytest.raises(SandboxError, match=r"^landlock: the kernel does not offer Landlock \(needs Linux >= 5.13"):
        probe("landlock")
    report = probe("auto")
    assert report.mechanism == "none" and report.enforced == ()
    assert report.detail.startswith("NOT SANDBOXED") and "landlock: the kernel does not offer" in report.detail


@pytest.mark.parametrize("call", [lambda: probe("docker"), lambda: wrap(["true"], SandboxPolicy(), "auto")])
def test_bad_mechanism_name_is_a_one_line_error(call):
    with pytest.raises(SandboxError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message.startswith("unknown sandbox mechanism")
    assert "bubblewrap, landlock, none" in message


def test_enter_without_environment_is_a_no_op(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(confine, "_ENTERED", [])
    assert enter_from_environment() is None


def test_malformed_environment_is_refused(monkeypatch):
    monkeypatch.setattr(confine, "_ENTERED", [])
    monkeypatch.setenv(ENV_VAR, "{not json")
    with pytest.raises(SandboxError, match=f"^{ENV_VAR} is malformed"):
        enter_from_environment()
    monkeypatch.setenv(ENV_VAR, json.dumps({"mechanism": "bubblewrap", "report": {"mechanism": "bubblewrap"}}))
    with pytest.raises(SandboxError, match="not PID 1"):  # this test process is not inside bwrap
        enter_from_environment()


def test_gpu_policy_binds_nvidia_devices(monkeypatch, tmp_path):
    if not shutil.which("bwrap"):
        pytest.skip("bwrap is not installed")
    monkeypatch.setattr(confine, "gpu_device_nodes", lambda: ["/dev/nvidia0", "/dev/nvidiactl"])
    argv, _ = wrap(["true"], SandboxPolicy(writable=(tmp_path,), gpu=True), "bubblewrap")
    assert ["--dev-bind", "/dev/nvidia0", "/dev/nvidia0", "--dev-bind", "/dev/nvidiactl", "/dev/nvidiactl"] == \
        argv[argv.index("--dev-bind"):argv.index("--dev-bind") + 6]
    argv, _ = wrap(["true"], SandboxPolicy(writable=(tmp_path,)), "bubblewrap")
    assert "--dev-bind" not in argv


# --------------------------------------------------------------------------- policy and carving


def test_policy_round_trips_through_json():
    policy = SandboxPolicy(readable=(Path("/usr"), Path("/opt/team 1")), writable=(Path("/dev/shm/w"),),
                           hidden=(Path("/data/HR"),), gpu=True)
    assert SandboxPolicy.from_json(policy.to_json()) == policy
    assert json.loads(policy.to_json())["readable"] == ["/usr", "/opt/team 1"]


@pytest.mark.parametrize("text, message", [
    ("[1]", "must be a JSON object"),
    ("{", "not valid JSON"),
    ('{"readable": "/usr"}', "field 'readable' must be a list"),
    ('{"hidden": ["relative/path"]}', "SandboxPolicy.hidden: relative/path is not an absolute path"),
    ('{"gpu": "yes"}', "SandboxPolicy.gpu must be true or false"),
    ('{"readabel": []}', "unknown field(s): readabel"),
])
def test_bad_policy_json_is_a_clear_error(text, message):
    with pytest.raises(SandboxError) as info:
        SandboxPolicy.from_json(text)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("field, path, message", [
    ("readable", "/", "SandboxPolicy.readable: / would expose everything"),
    ("readable", "/proc/1", "SandboxPolicy.readable: /proc/1 is under /proc"),
])
def test_policy_paths_the_sandbox_must_own_are_refused(tmp_path, field, path, message):
    policy = SandboxPolicy(writable=(tmp_path,), **{field: (Path(path),)})
    with pytest.raises(SandboxError, match=message):
        wrap(["true"], policy, "landlock")


def test_seccomp_program_shape():
    program = sandbox_landlock.seccomp_program("x86_64")
    assert program[:2] == [(0x20, 0, 0, 4), (0x15, 0, 16, 0xC000003E)]  # load arch; foreign ABI -> EPERM
    assert program[-3:] == [(0x06, 0, 0, 0x5000D), (0x06, 0, 0, 0x50001), (0x06, 0, 0, 0x50026)]
    jumps = [(i, jt, jf) for i, (code, jt, jf, _) in enumerate(program) if code & 0x07 == 0x05]  # BPF_JMP class
    assert (0x15, 11, 0, 203) in program  # sched_setaffinity -> EPERM: a pinned worker stays on its cores
    assert len(jumps) == 10 and all(i + 1 + max(jt, jf) < len(program) for i, jt, jf in jumps)
    assert sandbox_landlock.seccomp_program("riscv64") is None


def test_writable_inside_hidden_is_refused(tmp_path):
    (tmp_path / "data" / "work").mkdir(parents=True)
    policy = SandboxPolicy(writable=(tmp_path / "data" / "work",), hidden=(tmp_path / "data",))
    with pytest.raises(SandboxError, match="lies inside hidden path"):
        wrap(["true"], policy, "landlock")
    with pytest.raises(SandboxError, match="does not exist"):
        wrap(["true"], SandboxPolicy(writable=(tmp_path / "missing",)), "landlock")


TREE = {
    "/r": ["a", "b", "data"],
    "/r/data": ["HR", "LR"],
    "/r/b": ["x", "y"],
    "/r/b/y": ["z"],
}


def _tree_children(path: Path):
    return TREE.get(str(path))


@pytest.mark.parametrize("allowed, hidden, expected", [
    (["/r"], [], ["/r"]),                                          # nothing hidden inside: kept whole
    (["/r"], ["/elsewhere"], ["/r"]),
    (["/r"], ["/r/data"], ["/r/a", "/r/b"]),                       # hidden child carved out
    (["/r"], ["/r/data/HR"], ["/r/a", "/r/b", "/r/data/LR"]),      # recursive: only the branch to HR goes
    (["/r"], ["/r/b/y/z"], ["/r/a", "/r/data", "/r/b/x"]),         # /r/b/y has nothing left
    (["/r"], ["/r/data", "/r/b/x"], ["/r/a", "/r/b/y"]),           # two hidden paths
    (["/r"], ["/r/missing/deep"], ["/r/a", "/r/b", "/r/data"]),    # not there yet: a later one stays hidden
    (["/r/data", "/q"], ["/r"], ["/q"]),                           # allowed inside hidden: hidden wins
    (["/r"], ["/r"], []),
    (["/r/a"], ["/r/a/inner"], ["/r/a"]),                          # a file (no children) is kept whole
])
def test_carve(allowed, hidden, expected):
    result = carve([Path(p) for p in allowed], [Path(p) for p in hidden], _tree_children)
    assert sorted(map(str, result)) == sorted(expected)


def test_carve_lists_parents_before_children():
    result = carve([Path("/r/b/y"), Path("/r")], [Path("/r/data")], _tree_children)
    assert [str(p) for p in result] == ["/r/a", "/r/b", "/r/b/y"]


def test_base_readable_paths_cover_python_but_not_the_repository():
    paths = base_readable_paths()
    assert Path(sys.prefix) in paths
    assert PACKAGE_DIR in paths
    assert REPO_ROOT not in paths and all(p.is_absolute() for p in paths)
    assert not any(REPO_ROOT in p.parents and p.name != "ntire_bench" for p in paths)
