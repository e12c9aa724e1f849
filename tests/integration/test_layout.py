"""The package layout holds: the import contracts, no private names across packages, small modules, and a
standard-library-only path into the sandbox."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO

PACKAGE = REPO / "ntire_bench"
MAX_MODULE_LINES = 420  # "about 400": a module past this holds more than one concept


def _python_files(*roots: str) -> list[Path]:
    return sorted(p for root in roots for p in (REPO / root).rglob("*.py") if "fixtures" not in p.parts)


def _owner(path: Path) -> str:
    """The package a file belongs to: ``ntire_bench.<package>``, or its top folder outside the harness."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:2]) if parts[0] == "ntire_bench" else parts[0]


def test_the_import_contracts_hold() -> None:
    """Layers (each package imports only from those below it) and no cycles, as pyproject.toml declares."""
    lint = shutil.which("lint-imports")
    assert lint is not None, "lint-imports is not installed; pip install -e '.[test]'"
    done = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_the_layers_contract_names_every_package() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in config if c["type"] == "layers"]
    named = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert named == packages and layers["exhaustive"] is True


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_name_a_package_exports_exists(package: str) -> None:
    import importlib

    face = importlib.import_module(f"ntire_bench.{package}")
    for name in getattr(face, "__all__", []):
        assert getattr(face, name) is not None, f"ntire_bench.{package}.{name}"


def test_no_private_name_is_imported_across_packages() -> None:
    offenders = []
    for path in _python_files("ntire_bench", "tests", "benchmarks", "submissions"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("ntire_bench"):
                continue
            imported = ".".join(node.module.split(".")[:2])
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and imported != _owner(path):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.module}.{alias.name}")
    assert not offenders, "private names imported from another package:\n" + "\n".join(offenders)


def test_every_module_holds_one_concept() -> None:
    long = [f"{p.relative_to(REPO)}: {n} lines" for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them along their concepts): {long}"


def test_the_harness_location_is_computed_in_one_place() -> None:
    """The sandbox's readable paths, the child's PYTHONPATH and the harness fingerprint all come from util.paths."""
    uses = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py") if "Path(__file__)" in p.read_text()]
    assert uses == ["ntire_bench/util/paths.py"], uses


@pytest.mark.parametrize("module", ["ntire_bench", "ntire_bench.util", "ntire_bench.sandbox",
                                    "ntire_bench.sandbox.__main__"])
def test_what_runs_before_the_sandbox_is_standard_library_only(module: str) -> None:
    """A worker enters the sandbox (Landlock, seccomp) before any thread starts: nothing it imports first may
    start threads or load a native library, so those packages import the standard library alone."""
    code = ("import importlib, json, sys; before = set(sys.modules); importlib.import_module(sys.argv[1]); "
            "print(json.dumps(sorted(m for m in set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", code, module], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=True)
    loaded = json.loads(done.stdout)
    foreign = [m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names and m.split(".")[0] != "ntire_bench"]
    assert not foreign, f"{module} imports {foreign}"
    harness = {m for m in loaded if m.startswith("ntire_bench.")}
    assert harness <= {m for m in harness if m.startswith(("ntire_bench.util", "ntire_bench.sandbox"))}, harness
