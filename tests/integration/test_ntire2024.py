"""The official NTIRE 2024 ESR checkout as delivered: import, run, compare with the figures the official code
computes (../shared/reference/ntire2024_teams.json).

The teams' code is never part of this project: these tests run on a checkout you fetched or cloned
(git clone https://github.com/Amazingren/NTIRE2024_ESR), named by $NTIRE2024_CHECKOUT, with the checkpoints
it lacks taken from ../shared/ntire2024_esr (--model-zoo). Without it they skip; the synthetic checkout
(tests/integration/test_ntire_teams.py) covers what they check.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from ntire_bench.data.datasets import load_dataset_specs
from ntire_bench.runner.discovery import discover
from ntire_bench.ntire.importer import import_checkout
from ntire_bench.runner.evaluation import run_benchmark
from ntire_bench.runner.context import RunConfig, hidden_paths
from ntire_bench.data.datasets import prepare_datasets
from support.paths import REPO

FIGURES = ("params", "flops", "activations", "num_conv")
# A few quick branches; team 48 (no weights) is an RRDB network too slow on a CPU for every CI run.
QUICK = {0: "ok", 29: "ok", 38: "ok", 7: "failed", 18: "failed"}


CHECKOUT_ENV = "NTIRE2024_CHECKOUT"


@pytest.fixture(scope="module")
def checkout():
    value = os.environ.get(CHECKOUT_ENV)
    if not value:
        pytest.skip(f"set {CHECKOUT_ENV} to a clone of github.com/Amazingren/NTIRE2024_ESR (docs/ntire-import.md)")
    path = Path(value)
    if not (path / "test_demo.py").is_file():
        pytest.skip(f"{path} ({CHECKOUT_ENV}): no test_demo.py there; point it at the root of the checkout")
    return path


@pytest.fixture(scope="module")
def official(shared_dir):
    return {t["model_id"]: t for t in json.loads((shared_dir / "reference" / "ntire2024_teams.json").read_text())["teams"]}


@pytest.fixture(scope="module")
def imported(checkout, tmp_path_factory):
    out = tmp_path_factory.mktemp("ntire2024") / "submissions"
    return import_checkout(checkout, out), out


def _model_id(name: str) -> int:
    return int(re.match(r"team(\d+)", name).group(1))


def _run(declarations: list[Path], shared_dir: Path, out: Path, **timing):
    specs = load_dataset_specs(REPO / "datasets.yaml")
    datasets = prepare_datasets([specs["Set5"]], progress=False)
    entries = discover(declarations, include_entry_points=False, hidden=hidden_paths([d.spec for d in datasets], out))
    settings = {"device": "cpu", "progress": False, "log": lambda m: None, "model_zoo": (shared_dir / "ntire2024_esr",),
                **timing}
    return {r.submission: r for r in run_benchmark(entries, datasets, RunConfig(out_dir=out, **settings))}


def test_every_branch_is_declared_with_the_organisers_data_range(imported, official):
    report, out = imported
    assert [d.team_id for d in report.declarations] == sorted(official)
    assert not report.skipped
    for declaration in report.declarations:
        if "data_range" in official[declaration.team_id]:
            assert declaration.data_range == official[declaration.team_id]["data_range"], declaration.name
    assert len(list(out.glob("*.yaml"))) == 35


def test_quick_teams_load_with_the_official_complexity_or_fail_naming_the_package(imported, official, shared_dir,
                                                                                  tmp_path):
    if importlib.util.find_spec("einops") is None:
        pytest.skip("einops is not installed (the 2024 challenge's requirement; pip install einops)")
    _, out = imported
    chosen = [p for p in sorted(out.glob("*.yaml")) if _model_id(p.stem) in QUICK]
    records = _run(chosen, shared_dir, tmp_path, timing="fixed", warmup=0, repeats=1)
    for name, record in records.items():
        model_id = _model_id(name)
        assert record.status == QUICK[model_id], (name, record.error)
        if record.status == "ok":
            got = {k: getattr(record.complexity, k) for k in FIGURES}
            assert got == {k: official[model_id][k] for k in FIGURES}, name
    assert "needs package 'mamba_ssm'" in records["team07_DVMSR"].error
    assert "needs package 'torchvision'" in records["team18_MagicSR"].error


@pytest.mark.slow
def test_the_whole_2024_challenge_on_set5(imported, official, shared_dir, tmp_path):
    """29 branches ok with exactly the official figures (and Table 1 at its printed precision); the other six
    fail or have no weights, naming the package or file."""
    if importlib.util.find_spec("einops") is None:
        pytest.skip("einops is not installed (pip install einops)")
    _, out = imported
    records = _run(sorted(out.glob("*.yaml")), shared_dir, tmp_path)
    buildable = [mid for mid, team in official.items() if "params" in team]
    assert len(buildable) == 29
    for name, record in records.items():
        team = official[_model_id(name)]
        if "params" in team:
            assert record.status == "ok", (name, record.error)
            assert {k: getattr(record.complexity, k) for k in FIGURES} == {k: team[k] for k in FIGURES}, name
            assert round(record.complexity.params / 1e6, 3) == team["table1"]["params_m"]
            assert round(record.complexity.flops / 1e9, 2) == team["table1"]["flops_g"]
            assert record.datasets["Set5"].timing_audit.verified
        else:
            assert record.status in ("failed", "no_weights"), name
            assert re.search(r"needs package '\w+'|not found", record.error), record.error
