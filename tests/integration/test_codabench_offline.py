"""The Codabench programs with no network: the harness installed from the bundle's own wheel (as its
worker_image/Dockerfile does), both phases run in the worker's folder layout with the network cut
(``unshare -n``), and nothing installed at run time. Also: what the Dockerfile pins and installs.

Here a virtual environment on top of this one stands in for the image (it sees this environment's
torch and pinned dependencies; the harness itself comes from the wheel alone). Skipped, with the
reason, where the machine cannot cut a process off the network.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.paths import PLUGINS, REPO, SHARED
from support.set5_run import VALID, Set5Run, set5_run

from ntire_bench.cli.main import main
from ntire_bench.codabench.image import build_harness_wheel, harness_source
from ntire_bench.codabench.programs import SCORES_FILE
from ntire_bench.codabench.spec import COLUMN_KEYS, WORKER_BASE_IMAGE
from ntire_bench.util.version import __version__

QUEUE = "6c3f6b0e-4a51-4a7e-9d0e-0d7c7b1c2a10"
EDITION_YAML = """\
description: Set5 stand-in (threshold and runtime on the validation set only)
baseline: tiny_net
weights: {runtime: 0.8, flops: 0.1, params: 0.1}
thresholds: {DIV2K_LSDIR_valid: 26.50}
runtime_datasets: [DIV2K_LSDIR_valid]
runs: 1
"""
FAST = ["--timing", "fixed", "--warmup", "0", "--repeats", "1", "--sandbox", "auto"]


def _offline_prefix() -> list[str]:
    """The command prefix that runs a process in a network namespace of its own (no interface but loopback)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed: cannot run the programs with the network cut")
    prefix = [unshare, "-n"] if os.geteuid() == 0 else [unshare, "-rn"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"this machine does not allow a network namespace ({' '.join(prefix)}: "
                    f"{probe.stderr.strip() or probe.returncode}): cannot run the programs with the network cut")
    return prefix


@pytest.fixture(scope="module")
def offline() -> list[str]:
    prefix = _offline_prefix()
    cut = subprocess.run([*prefix, sys.executable, "-c",
                          "import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)"],
                         capture_output=True, text=True, check=False)
    assert cut.returncode != 0 and "unreachable" in cut.stderr.lower(), cut.stderr  # the network really is gone
    return prefix


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unzipped bundle generated with the real wheel of this checkout, an edition file, times of day and a queue."""
    if harness_source() is None:
        pytest.skip("the harness is not installed from a checkout, so its wheel cannot be built here")
    root = tmp_path_factory.mktemp("offline")
    wheel = build_harness_wheel(root / "wheel")
    edition = root / "set5_rules.yaml"
    edition.write_text(EDITION_YAML)
    out = root / "bundle.zip"
    result = CliRunner().invoke(main, ["codabench", "bundle", "--out", str(out), "--wheel", str(wheel),
                                       "--edition", str(edition), "--queue", QUEUE, "--dev-start", "2026-01-20 09:00",
                                       "--test-start", "2026-03-14 12:00", "--test-end", "2026-03-21 18:00"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        archive.extractall(root / "bundle")
    return root / "bundle"


@pytest.fixture(scope="module")
def image(bundle: Path, offline: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image stand-in: a venv where the bundle's wheel is installed the Dockerfile's way, with no network."""
    venv = tmp_path_factory.mktemp("image") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    (wheel,) = (bundle / "worker_image").glob("ntire_bench-*.whl")
    assert f"--no-index --no-deps /opt/ntire-bench/{wheel.name}" in (bundle / "worker_image" / "Dockerfile").read_text()
    # --ignore-installed: this environment has the harness installed in editable mode, the venv must not reuse it
    install = subprocess.run([*offline, str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
                              "--no-deps", "--ignore-installed", str(wheel)], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import ntire_bench; print(ntire_bench.__file__)"],
                           capture_output=True, text=True, cwd=venv, check=False)
    assert where.stdout.strip() == str(venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
                                       / "site-packages" / "ntire_bench" / "__init__.py"), where.stderr
    return venv


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Set5Run:
    return set5_run(tmp_path_factory.getbasetemp())


def _container(root: Path, program: Path) -> Path:
    app = root / "app"
    shutil.copytree(program, app / "program")
    (app / "output").mkdir(parents=True)
    return app


def _program(bundle: Path, task: int) -> Path:
    data = yaml.safe_load((bundle / "competition.yaml").read_text())
    return bundle / data["tasks"][task]["scoring_program"]


def _run_offline(offline: list[str], image: Path, program: Path, app: Path, *extra: str) -> subprocess.CompletedProcess:
    """The program's metadata.yaml command, with the network cut, the image's harness first on PATH, /app -> ``app``."""
    command = yaml.safe_load((program / "metadata.yaml").read_text())["command"]
    assert "pip" not in command and not command.startswith("sh ")  # nothing is installed at run time
    args = [a.replace("/app/", f"{app}/") for a in shlex.split(command)]
    env = {**os.environ, "PATH": f"{image / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONNOUSERSITE": "1"}
    assert shutil.which(args[0], path=env["PATH"]) == str(image / "bin" / "ntire-bench")  # the image's harness
    return subprocess.run([*offline, *args, *extra], cwd=app / "program", capture_output=True, text=True, timeout=600,
                          env=env, check=False)


def test_both_phases_score_with_no_network(bundle: Path, image: Path, offline: list[str], run: Set5Run,
                                           tmp_path: Path) -> None:
    # Development (results) phase: an upload of rlfn's SR images
    program = _program(bundle, 0)
    app = _container(tmp_path / "dev", program)
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / VALID)
    shutil.copytree(run.sr_dir("rlfn"), app / "input" / "res")
    done = _run_offline(offline, image, program, app)
    assert done.returncode == 0, done.stderr
    scores = json.loads((app / "output" / SCORES_FILE).read_text())
    assert scores["psnr_valid"] == run.records["rlfn"].datasets[VALID].psnr
    # Final (code) phase: the ingestion runs bicubic and times the baseline, then the scoring program ranks it
    ingestion = _container(tmp_path / "ingestion", bundle / "ingestion_program")
    code = ingestion / "ingested_program"
    code.mkdir()
    shutil.copy(REPO / "submissions" / "bicubic.py", code / "submission.py")
    (code / "metadata").write_text("description: bicubic x4\n")
    shutil.copytree(SHARED / "data" / "Set5" / "LR", ingestion / "input_data" / VALID)
    (ingestion / "input_data" / "baseline").mkdir()
    shutil.copy(PLUGINS / "good" / "tiny_net.py", ingestion / "input_data" / "baseline" / "submission.py")
    done = _run_offline(offline, image, bundle / "ingestion_program", ingestion, *FAST)
    assert done.returncode == 0, done.stderr
    program = _program(bundle, 1)
    scoring = _container(tmp_path / "scoring", program)
    shutil.copytree(SHARED / "data" / "Set5" / "HR", scoring / "input" / "ref" / VALID)
    shutil.copytree(ingestion / "output", scoring / "input" / "res")
    (scoring / "input" / "res" / "metadata").write_text("exitCode: null\ningestionExitCode: 0\n")
    done = _run_offline(offline, image, program, scoring)
    assert done.returncode == 0, done.stderr
    scores = json.loads((scoring / "output" / SCORES_FILE).read_text())
    assert list(scores) == list(COLUMN_KEYS)
    assert scores["psnr_valid"] == run.records["bicubic"].datasets[VALID].psnr
    assert 0 < scores["score_final"] < 1e9 and scores["score_params"] == 1.0  # bicubic has no parameters


def test_the_dockerfile_pins_every_dependency_and_installs_the_bundled_wheel(bundle: Path) -> None:
    folder = bundle / "worker_image"
    text = (folder / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in re.sub(r"\\\n", " ", text).splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    assert instructions[0] == ["FROM", WORKER_BASE_IMAGE]
    assert {word for word, _ in instructions} <= {"FROM", "ENV", "RUN", "COPY", "LABEL"}
    for word, rest in instructions:
        if word == "COPY":  # every source is in the build context
            source, _ = rest.split()
            assert (folder / source).is_file(), source
    (wheel,) = folder.glob("ntire_bench-*.whl")
    assert wheel.name == f"ntire_bench-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:  # the package data the programs read travels in the wheel
        assert "ntire_bench/scoring/editions.yaml" in archive.namelist()
    pins = [line for line in (folder / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9._-]+==[^=\s]+", pin) for pin in pins), pins
    pinned = {pin.split("==")[0].lower().replace("_", "-"): pin.split("==")[1] for pin in pins}
    for name, version in pinned.items():
        assert metadata.version(name) == version  # the versions this environment runs
    declared = {"fvcore", "numpy", "opencv-python-headless", "pandas", "nvidia-ml-py", "click", "pyyaml",
                "scikit-image", "tqdm", "matplotlib", "numba", "lazy-loader"}  # pyproject.toml, less torch
    assert declared <= set(pinned) and "torch" not in pinned
    assert "llvmlite" in pinned and "iopath" in pinned  # transitive ones too (numba, fvcore)
    torch_version = WORKER_BASE_IMAGE.split(":")[1].split("-")[0]
    assert f"expected {torch_version}" in text  # the build refuses a base image with another torch


def test_docker_build_check_where_docker_can(bundle: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    buildx = subprocess.run([docker, "buildx", "version"], capture_output=True, text=True, check=False)
    daemon = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if buildx.returncode != 0 or daemon.returncode != 0:
        pytest.skip("docker build --check needs BuildKit (docker buildx) and a running daemon; neither is here")
    done = subprocess.run([docker, "buildx", "build", "--check", str(bundle / "worker_image")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
