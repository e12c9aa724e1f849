"""NTIRE 2023 end to end: `ntire-bench run submissions/lgvan.py submissions/rfdn.py --dataset Set5 --edition
ntire2023` counts by the 2023 rules, ranks both, and its figures equal what the official 2023 code measures
(../shared/reference/ntire2023_lgvan.json). A slow acceptance run (make test-slow): the same figures are pinned
network by network in tests/unit/archs/test_ntire2023_networks.py and the edition's rules in
tests/unit/scoring/test_editions_rules.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from ntire_bench.complexity.rules import FVCORE, NTIRE2023

from support.paths import REPO

FAST = ["--timing", "fixed", "--warmup", "0", "--repeats", "1", "--no-progress", "--device", "cpu"]
REFERENCE_NAMES = {"lgvan": "18_LGVAN", "rfdn": "00_RFDN_baseline"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(shared_dir):
    path = shared_dir / "reference" / "ntire2023_lgvan.json"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    return json.loads(path.read_text())["models"]


@pytest.fixture(scope="module")
def run_2023(tmp_path_factory, model_zoo, shared_data):
    out = tmp_path_factory.mktemp("ntire2023")
    result = subprocess.run(
        [sys.executable, "-m", "ntire_bench.cli", "run", "submissions/lgvan.py", "submissions/rfdn.py",
         "--dataset", "Set5", "--edition", "ntire2023", "--model-zoo", str(model_zoo),
         "--out", str(out / "results"), "--leaderboard", str(out / "leaderboard"), *FAST],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = {name: json.loads((out / "results" / f"{name}.json").read_text()) for name in REFERENCE_NAMES}
    return {"out": out, "results": results, "board": pd.read_csv(out / "leaderboard" / "leaderboard.csv")}


def test_both_are_ranked_under_the_2023_rules(run_2023):
    board = run_2023["board"].set_index("submission")
    assert board.loc["lgvan", "eligible"] and board.loc["rfdn", "eligible"]
    assert sorted(board.loc[["lgvan", "rfdn"], "rank"].tolist()) == [1, 2]
    assert {"rank_model_complexity", "rank_overall"} <= set(board.columns)


@pytest.mark.parametrize("name", sorted(REFERENCE_NAMES))
def test_the_figures_equal_the_official_2023_code(run_2023, reference, name):
    result, expected = run_2023["results"][name], reference[REFERENCE_NAMES[name]]
    complexity = result["complexity"]
    assert complexity["convention"] == NTIRE2023 and complexity["counted_by"] == "graph"
    assert (result["params"], result["flops"], result["activations"], result["num_conv"]) == (
        expected["params"], expected["flops_2023"], expected["activations"], expected["num_conv"])
    assert complexity["flops_by_convention"] == {NTIRE2023: expected["flops_2023"], FVCORE: expected["flops_fvcore"]}
    psnr = {image["name"]: image["psnr"] for image in result["datasets"]["Set5"]["images"]}
    for image, want in expected["Set5"]["psnr_per_image"].items():
        assert psnr[image] == pytest.approx(want, abs=1e-4), image
