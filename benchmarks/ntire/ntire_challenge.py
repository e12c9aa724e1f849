"""Acceptance run of a whole NTIRE ESR challenge as delivered: import a checkout, run every team on Set5.

    git clone https://github.com/Amazingren/NTIRE2024_ESR /data/ntire2024_esr
    python -m benchmarks.ntire.ntire_challenge /data/ntire2024_esr [--model-zoo ../shared/ntire2024_esr]
        [--reference ../shared/reference/ntire2024_teams.json] [--baseline team00_RLFN_baseline]

CHECKOUT is a copy of the organisers' repository that you fetched or cloned (the teams' code is
never part of this project). Checkpoints it lacks are looked up as DIR/model_zoo/<file> in each
--model-zoo DIR; for a 2024 checkout the default is ../shared/ntire2024_esr, which holds the 2024
teams' checkpoints. Imports the checkout with `ntire-bench import-ntire` (nothing special-cased
by team), runs `ntire-bench run` over every declaration on Set5 on the CPU, then prints: the
counts of ok / no_weights / failed with each reason, the complexity agreement with the official
figures (params, FLOPs, activations and Conv2d count, exactly) as matches out of the teams that
loaded, and the wall time. The baseline is the branch with model_id 0 unless --baseline names
one. Install the challenge's requirements first (for 2024: einops), as organisers do; the
harness itself does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import REPO as ROOT
from benchmarks.common import SHARED

DEFAULT_REFERENCE = SHARED / "reference" / "ntire2024_teams.json"
DEFAULT_2024_ZOO = SHARED / "ntire2024_esr"  # the 2024 teams' checkpoints, under model_zoo/
FIGURES = ("params", "flops", "activations", "num_conv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path,
                        help="an official NTIRE ESR checkout you fetched or cloned (test_demo.py, models/, model_zoo/)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="official figures per model_id (the format of ntire2024_teams.json) [default: that file "
                             "when the checkout is NTIRE 2024's]")
    parser.add_argument("--model-zoo", type=Path, action="append", default=None,
                        help="where checkpoints the checkout lacks are (DIR/model_zoo/<file>) [default for a 2024 "
                             f"checkout: {DEFAULT_2024_ZOO}]")
    parser.add_argument("--baseline", default=None, help="the baseline's submission name [default: model_id 0's]")
    parser.add_argument("--dataset", default="Set5")
    parser.add_argument("--work", type=Path, default=None, help="keep declarations and results here")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `ntire-bench run` options")
    args = parser.parse_args()
    if not (args.checkout / "test_demo.py").is_file():
        parser.error(f"{args.checkout}: no test_demo.py; pass the root of an NTIRE ESR checkout")
    is_2024 = "2024" in args.checkout.resolve().name
    reference_path = args.reference or (DEFAULT_REFERENCE if is_2024 else None)
    zoos = args.model_zoo or ([DEFAULT_2024_ZOO] if is_2024 and DEFAULT_2024_ZOO.is_dir() else [])
    work = args.work or Path(tempfile.mkdtemp(prefix="ntire-challenge-"))
    cli = [sys.executable, "-m", "ntire_bench.cli"]

    started = time.perf_counter()
    subprocess.run([*cli, "import-ntire", str(args.checkout), "--out", str(work / "submissions"), "--overwrite"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    imported = time.perf_counter()
    baseline = args.baseline or next((p.stem for p in sorted((work / "submissions").glob("*.yaml"))
                                      if re.fullmatch(r"team0*0(_.*)?", p.stem)), "team00")
    zoo_options = [option for zoo in zoos for option in ("--model-zoo", str(zoo))]
    run = subprocess.run([*cli, "run", str(work / "submissions"), "--dataset", args.dataset, "--device", "cpu",
                          "--out", str(work / "results"), "--leaderboard", str(work / "leaderboard"), "--no-progress",
                          "--edition", "default", "--baseline", baseline, *zoo_options, *args.extra],
                         cwd=ROOT, capture_output=True, text=True)
    finished = time.perf_counter()
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return run.returncode

    results = {}
    for path in sorted((work / "results").glob("*.json")):
        data = json.loads(path.read_text())
        results[data["submission"]] = data
    statuses = Counter(r["status"] for r in results.values())
    print(f"{len(results)} branches: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    for name, data in results.items():
        if data["status"] != "ok":
            print(f"  {data['status']:<10} {name}: {data['error']}")

    if reference_path is not None and reference_path.is_file():
        official = {t["model_id"]: t for t in json.loads(reference_path.read_text())["teams"]}
        loaded = {n: r for n, r in results.items() if r["params"] is not None}
        matches, differences = 0, []
        for name, data in loaded.items():
            model_id = int(re.match(r"team(\d+)", name).group(1))
            expected = official.get(model_id, {})
            if all(data[k] == expected.get(k) for k in FIGURES):
                matches += 1
            else:
                differences.append(f"{name}: " + ", ".join(f"{k} {data[k]} vs {expected.get(k)}" for k in FIGURES
                                                           if data[k] != expected.get(k)))
        print(f"complexity (params, FLOPs, activations, Conv2d) equal to the official code: "
              f"{matches} of {len(loaded)} teams that loaded")
        for line in differences:
            print(f"  differs: {line}")
        audits = [r["datasets"][args.dataset]["timing_audit"] for r in results.values()
                  if r["status"] == "ok" and args.dataset in r["datasets"]]
        if audits:
            worst = min(a["min_ratio"] for a in audits)
            print(f"timing audit: lowest claimed/observed ratio {worst:.3f} over {len(audits)} honest teams, "
                  f"{sum(a['retries'] for a in audits)} re-timed blocks")
    else:
        print("complexity agreement: no reference figures (pass --reference FILE)")
    print(f"wall time: import {imported - started:.1f} s, run {finished - imported:.1f} s "
          f"({(finished - imported) / max(len(results), 1):.1f} s per branch); results in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
