"""The compute-worker image: a Dockerfile, the pinned requirements and the harness wheel it installs.

Codabench runs every program in the competition's ``docker_image`` and may give it no network
(the worker's ``COMPETITION_CONTAINER_NETWORK_DISABLED``, compute_worker/compute_worker.py,
``_run_program_directory``), so the harness and all its dependencies must be inside the image.
``worker_image_files`` writes the build context for one: the CUDA PyTorch base, every other
dependency pinned to the version this environment runs, and a wheel of this very harness. The
bundle's README says how to build, push and name it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from ntire_bench.codabench.spec import BundleError, BundleSpec
from ntire_bench.util.paths import IMPORT_ROOT
from ntire_bench.util.text import squash
from ntire_bench.util.version import __version__

DISTRIBUTION = "ntire-bench"
PROVIDED_BY_BASE = ("torch",)  # with everything torch needs: the base image's own builds are kept
BUILD_TOOLS = {"pip", "setuptools", "wheel"}
REQUIREMENTS_FILE = "requirements.txt"
DOCKERFILE = "Dockerfile"
_REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01: wheel members get this time, so a rebuild is byte-identical


def harness_source() -> Path | None:
    """The checkout the harness runs from (editable install), or None when it was installed from a wheel."""
    pyproject = IMPORT_ROOT / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name\s*=\s*"ntire-bench"', pyproject.read_text(), re.MULTILINE):
        return IMPORT_ROOT
    return None


def build_harness_wheel(out_dir: Path, source: Path | None = None) -> Path:
    """Build the harness wheel from ``source`` (default: this checkout) into ``out_dir``; return its path.

    The build runs on a clean copy of the sources (no stale ``build/`` output), offline and without
    build isolation: it needs only the setuptools installed here.
    """
    source = source or harness_source()
    if source is None:
        raise BundleError(f"ntire-bench {__version__} is not installed from a checkout, so no wheel can be built; "
                          "pass --wheel PATH (a wheel of this version)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ntire-bench-wheel-") as scratch:
        tree = Path(scratch) / "src"
        tree.mkdir()
        for name in ("pyproject.toml", "README.md"):
            if (source / name).is_file():
                shutil.copy2(source / name, tree / name)
        shutil.copytree(source / "ntire_bench", tree / "ntire_bench",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        built = Path(scratch) / "wheel"
        env = {**os.environ, "SOURCE_DATE_EPOCH": _REPRODUCIBLE_EPOCH, "PIP_NO_INDEX": "1"}
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                               "--wheel-dir", str(built), str(tree)], capture_output=True, text=True, env=env, check=False)
        wheels = sorted(built.glob("ntire_bench-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            tail = squash(done.stderr or done.stdout)[-300:]
            raise BundleError(f"building the ntire-bench wheel from {source} failed: {tail or 'no wheel written'}; "
                              "pass --wheel PATH instead")
        target = out_dir / wheels[0].name
        shutil.move(str(wheels[0]), target)
    return target


def check_wheel(wheel: Path) -> Path:
    """``wheel`` must be a wheel of this harness version (the image must run the code that wrote the bundle)."""
    wheel = Path(wheel)
    match = re.fullmatch(r"ntire_bench-([^-]+)-.+\.whl", wheel.name)
    if not wheel.is_file() or match is None:
        raise BundleError(f"--wheel {wheel}: not an ntire-bench wheel file (ntire_bench-<version>-...whl)")
    if match.group(1) != __version__:
        raise BundleError(f"--wheel {wheel}: is ntire-bench {match.group(1)}, but this harness is {__version__}; "
                          "build the wheel from the same checkout")
    return wheel


def pinned_requirements(distribution: str = DISTRIBUTION, provided: tuple[str, ...] = PROVIDED_BY_BASE) -> list[str]:
    """``name==version`` for every package ``distribution`` needs, as installed here, less what the base provides.

    Requirements are followed transitively (extras included, markers evaluated for this
    interpreter); ``provided`` and their own requirements are the base image's and are left out.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def closure(roots: list[tuple[str, frozenset[str], str]]) -> dict[str, metadata.Distribution]:
        found: dict[str, metadata.Distribution] = {}
        seen: set[tuple[str, frozenset[str]]] = set()
        todo = list(roots)
        while todo:
            name, extras, needed_by = todo.pop()
            key = canonicalize_name(name)
            if (key, extras) in seen:
                continue
            seen.add((key, extras))
            try:
                dist = found.get(key) or metadata.distribution(name)
            except metadata.PackageNotFoundError:
                raise BundleError(f"{name}, which {needed_by} requires, is not installed here; install it (the worker "
                                  "image pins what this environment runs)") from None
            found[key] = dist
            for text in dist.requires or []:
                req = Requirement(text)
                if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in ("", *extras)):
                    todo.append((req.name, frozenset(req.extras), dist.metadata["Name"]))
        return found

    base = closure([(name, frozenset(), "the base image") for name in provided])
    needed = closure([(distribution, frozenset(), distribution)])
    skip = set(base) | BUILD_TOOLS | {canonicalize_name(distribution)}
    return sorted((f"{dist.metadata['Name']}=={dist.version}" for key, dist in needed.items() if key not in skip),
                  key=str.lower)


def base_image_torch(base_image: str) -> str | None:
    """The torch version a ``pytorch/pytorch:<version>-cuda...`` tag carries, or None for another image."""
    match = re.search(r":(\d+\.\d+\.\d+)-", base_image)
    return match.group(1) if match else None


def dockerfile_text(spec: BundleSpec, wheel_name: str) -> str:
    """The Dockerfile of the compute-worker image: ``spec.base_image``, the pinned requirements, the harness wheel."""
    torch = base_image_torch(spec.base_image)
    keep_torch = (f"RUN python -c \"import torch, sys; v = torch.__version__.split('+')[0]; "
                  f"sys.exit(0 if v == '{torch}' else 'the base image has torch ' + v + ', expected {torch}')\"\n"
                  if torch else "RUN python -c \"import torch\"\n")
    return f"""# Compute-worker image for the Codabench bundle of "{spec.title}" (ntire-bench {__version__}).
# The programs run the harness from this image and install nothing: workers may have no network.
# Build it from this folder, push it where the workers can pull it, and name it in competition.yaml:
#   docker build --tag REGISTRY/ntire-bench-worker:{__version__} .
#   docker push REGISTRY/ntire-bench-worker:{__version__}
#   ntire-bench codabench bundle ... --docker-image REGISTRY/ntire-bench-worker:{__version__}
FROM {spec.base_image}

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

# The base image's torch (and what it needs) is the one the harness uses: refuse a base that differs.
{keep_torch}
# Every other dependency, pinned to the versions the bundle was generated with.
COPY {REQUIREMENTS_FILE} /opt/ntire-bench/{REQUIREMENTS_FILE}
RUN python -m pip install --requirement /opt/ntire-bench/{REQUIREMENTS_FILE}

# The harness itself, built from the checkout that wrote the bundle; its dependencies are all above.
COPY {wheel_name} /opt/ntire-bench/{wheel_name}
RUN python -m pip install --no-index --no-deps /opt/ntire-bench/{wheel_name} \\
 && ntire-bench --version \\
 && python -c "import ntire_bench.codabench.programs, ntire_bench.codabench.ingest, ntire_bench.runner.evaluation"

LABEL org.opencontainers.image.title="ntire-bench Codabench worker" \\
      org.opencontainers.image.version="{__version__}"
"""


def requirements_text(pins: list[str]) -> str:
    return (f"# Everything ntire-bench {__version__} needs besides torch, pinned to the environment that generated the\n"
            f"# bundle (Python {sys.version.split()[0]}). The base image provides torch and its own requirements.\n"
            + "".join(f"{pin}\n" for pin in pins))


def worker_image_files(spec: BundleSpec, wheel: Path) -> dict[str, bytes]:
    """The image's build context, by name inside ``worker_image/``: Dockerfile, requirements.txt and the wheel."""
    wheel = check_wheel(wheel)
    return {
        DOCKERFILE: dockerfile_text(spec, wheel.name).encode(),
        REQUIREMENTS_FILE: requirements_text(pinned_requirements()).encode(),
        wheel.name: wheel.read_bytes(),
    }
