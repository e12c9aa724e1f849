"""The Codabench programs, run the way the compute worker runs them: the command from the generated
``metadata.yaml``, in a temporary folder laid out like the container (``/app/...``)."""

from __future__ import annotations

import html
import json
import math
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from support.set5_run import VALID, Set5Run, set5_run

from ntire_bench.cli.main import main
from ntire_bench.util.version import __version__
from ntire_bench.codabench.programs import (DETAILED_FILE, EXIT_OK, EXIT_REJECTED, EXIT_SETUP, INGESTION_MANIFEST, NOT_RANKED, SCORES_FILE, leaderboard_scores, score_program)
from ntire_bench.codabench.ingest import IngestionOptions, ingest_program
from ntire_bench.codabench.spec import COLUMN_KEYS
from ntire_bench.codabench.validate import validate_competition_yaml
from ntire_bench.codabench.archive import validate_bundle
from ntire_bench.results.records import FAILED, SubmissionResult
from ntire_bench.results.store import atomic_write_json, read_result

from support.paths import SHARED
from support.paths import REPO
from support.paths import PLUGINS
EDITION_YAML = """\
description: Set5 stand-in (threshold and runtime on the validation set only; bicubic's 26.70 dB passes)
baseline: rlfn
weights: {runtime: 0.8, flops: 0.1, params: 0.1}
thresholds: {DIV2K_LSDIR_valid: 26.50}
runtime_datasets: [DIV2K_LSDIR_valid]
runs: 1
"""
FAST = ["--timing", "fixed", "--warmup", "0", "--repeats", "1"]  # the settings set5_run measured with
# The file the compute worker writes into a step's output (compute_worker.py push_output), as yaml.dump writes it.
WORKER_METADATA = "elapsedTime: 12.5\nexitCode: {exit_code}\ningestionElapsedTime: 12.5\ningestionExitCode: 0\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Set5Run:
    return set5_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the harness wheel worker_image/ carries: here the programs run this environment's harness
    (test_codabench_offline.py installs the real wheel and runs them with no network)."""
    path = tmp_path_factory.mktemp("wheel") / f"ntire_bench-{__version__}-py3-none-any.whl"
    path.write_bytes(b"stand-in")
    return path


def _bundle(tmp_path: Path, wheel: Path, *options: str) -> tuple[Path, Path]:
    """Generate a bundle with the CLI, unzip it; return (zip, folder)."""
    out = tmp_path / "bundle.zip"
    result = CliRunner().invoke(main, ["codabench", "bundle", "--out", str(out), "--wheel", str(wheel), *options])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(folder)
    return out, folder


def _container(root: Path, program: Path) -> Path:
    """``root/app`` laid out like the worker's container, with ``program`` copied to /app/program."""
    app = root / "app"
    shutil.copytree(program, app / "program")
    (app / "output").mkdir(parents=True)
    return app


def _worker_command(program: Path, app: Path) -> list[str]:
    """The metadata.yaml command with the container's /app paths pointing at ``app``."""
    command = yaml.safe_load((program / "metadata.yaml").read_text())["command"]
    args = shlex.split(command)
    assert args[:2] == ["ntire-bench", "codabench"], command  # the bare command: nothing is installed first
    beside_python = Path(sys.executable).with_name("ntire-bench")  # this environment's console script
    executable = str(beside_python) if beside_python.exists() else shutil.which("ntire-bench") or "ntire-bench"
    return [executable, *(a.replace("/app/", f"{app}/") for a in args[1:])]


def _run(command: list[str], app: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=app / "program", capture_output=True, text=True, timeout=300)


def _task_program(bundle_dir: Path, task: int) -> Path:
    """The scoring program folder that competition.yaml's task ``task`` runs."""
    data = yaml.safe_load((bundle_dir / "competition.yaml").read_text())
    return bundle_dir / data["tasks"][task]["scoring_program"]


def _leaderboard_keys(bundle_dir: Path) -> list[str]:
    data = yaml.safe_load((bundle_dir / "competition.yaml").read_text())
    (board,) = data["leaderboards"]
    return [column["key"] for column in board["columns"]]


# --------------------------------------------------------------------------- the bundle


def test_generated_bundle_passes_the_schema_check(tmp_path: Path, wheel: Path) -> None:
    out, folder = _bundle(tmp_path, wheel, "--edition", "ntire2026")
    data = yaml.safe_load((folder / "competition.yaml").read_text())
    members = zipfile.ZipFile(out).namelist()
    assert validate_competition_yaml(data, COLUMN_KEYS) == []
    organiser = ["reference_data/development_hr.zip", "reference_data/final_hr.zip", "input_data/final_lr.zip"]
    problems = validate_competition_yaml(data, COLUMN_KEYS, members)
    assert problems == [f"{where}: '{name}' is not in the bundle; add it (or the UUID key of a dataset already on "
                        f'Codabench) (Codabench says: Cannot find dataset: "{name}")'
                        for where, name in (("tasks[0].reference_data", organiser[0]),
                                            ("tasks[1].input_data", organiser[2]),
                                            ("tasks[1].reference_data", organiser[1]))]
    complete = tmp_path / "complete.zip"
    shutil.copy(out, complete)
    with zipfile.ZipFile(complete, "a") as archive:
        for name in organiser:
            archive.writestr(name, b"PK\x05\x06" + bytes(18))
    assert validate_bundle(complete) == []
    for program in ("scoring_program_results", "scoring_program", "ingestion_program"):
        command = yaml.safe_load((folder / program / "metadata.yaml").read_text())["command"]
        assert command.startswith("ntire-bench codabench ") and "pip" not in command
    for task, phase in ((0, "results"), (1, "code")):  # each task's program is told its phase
        command = yaml.safe_load((_task_program(folder, task) / "metadata.yaml").read_text())["command"]
        assert command == (f"ntire-bench codabench score --input /app/input --output /app/output "
                           f"--edition ntire2026 --phase {phase}")
    assert _leaderboard_keys(folder) == list(COLUMN_KEYS)


def test_bundle_with_an_edition_file_ships_it_with_both_programs(tmp_path: Path, wheel: Path) -> None:
    edition = tmp_path / "set5_rules.yaml"
    edition.write_text(EDITION_YAML)
    _, folder = _bundle(tmp_path, wheel, "--edition", str(edition))
    for program in ("scoring_program_results", "scoring_program", "ingestion_program"):
        assert (folder / program / "edition.yaml").read_text() == EDITION_YAML
        command = yaml.safe_load((folder / program / "metadata.yaml").read_text())["command"]
        assert " --edition edition.yaml" in command
    result = CliRunner().invoke(main, ["codabench", "bundle", "--out", str(tmp_path / "x.zip"), "--edition", "nope",
                                       "--wheel", str(wheel)])
    assert result.exit_code == 2 and "unknown edition 'nope'" in result.stderr
    result = CliRunner().invoke(main, ["codabench", "bundle", "--out", str(tmp_path / "x.zip"), "--queue", "my-gpu-queue",
                                       "--wheel", str(wheel)])
    assert result.exit_code == 2 and "Invalid value for '--queue': 'my-gpu-queue' is not a UUID" in result.stderr


# --------------------------------------------------------------------------- scoring an upload like the worker


@pytest.fixture(scope="module")
def scoring_program(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> tuple[Path, list[str]]:
    """The scoring program folder of an ntire2026 bundle, and the leaderboard's keys."""
    _, folder = _bundle(tmp_path_factory.mktemp("bundle_ntire2026"), wheel, "--edition", "ntire2026")
    return _task_program(folder, 0), _leaderboard_keys(folder)  # the development (results) task's program


def _upload_container(tmp_path: Path, program: Path, sr_dir: Path) -> Path:
    app = _container(tmp_path, program)
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / VALID)
    shutil.copytree(sr_dir, app / "input" / "res")
    (app / "input" / "res" / "metadata").write_text("exitCode: 0\nelapsedTime: 1.0\n")  # as the worker leaves it
    return app


def test_worker_scores_an_upload_like_run(run: Set5Run, scoring_program, tmp_path: Path) -> None:
    program, keys = scoring_program
    app = _upload_container(tmp_path, program, run.sr_dir("rlfn"))
    done = _run(_worker_command(program, app), app)
    assert done.returncode == 0, done.stderr
    scores = json.loads((app / "output" / SCORES_FILE).read_text())
    assert list(scores) == keys
    assert scores["psnr_valid"] == run.records["rlfn"].datasets[VALID].psnr  # to the last digit
    assert scores["psnr_test"] == 0.0
    assert all(scores[k] == NOT_RANKED for k in keys if not k.startswith("psnr_"))
    detailed = (app / "output" / DETAILED_FILE).read_text()
    expected_row = run.records["rlfn"].datasets[VALID].images[0]
    assert detailed.startswith("<!DOCTYPE html>") and "Uploaded SR images: scored" in detailed
    assert f"<tr><td>img_001</td><td class='num'>{expected_row.psnr:.4f}</td>" in detailed


def test_worker_rejects_a_bad_upload_without_scores(run: Set5Run, scoring_program, tmp_path: Path) -> None:
    program, _ = scoring_program
    app = _upload_container(tmp_path, program, run.sr_dir("bicubic"))
    res = app / "input" / "res"
    (res / "img_002x4.png").unlink()
    (res / "<b>notes&.txt").write_text("hello")
    png = (res / "img_003x4.png").read_bytes()
    (res / "img_003x4.png").write_bytes(png[: len(png) // 2])
    done = _run(_worker_command(program, app), app)
    assert done.returncode == EXIT_REJECTED
    reasons = ["<b>notes&.txt: is not an image; upload only the PNG outputs",
               "img_002x4.png: missing: no upload for HR image img_002 (expected img_002x4.png or img_002.png)",
               "img_003x4.png: truncated PNG (no IEND chunk after the image data); re-export or re-download the file"]
    assert done.stderr == f"submission rejected: 3 problems: {'; '.join(reasons)}\n"
    assert not (app / "output" / SCORES_FILE).exists()  # so Codabench marks the submission Failed
    detailed = (app / "output" / DETAILED_FILE).read_text()
    assert "&lt;b&gt;notes&amp;.txt" in detailed and "<b>notes" not in detailed
    assert all(f"<li>{html.escape(r)}</li>" in detailed for r in reasons)


def test_setup_errors_exit_2(run: Set5Run, tmp_path: Path) -> None:
    outcome = score_program(tmp_path / "input", tmp_path / "out")
    assert outcome.exit_code == EXIT_SETUP and "no reference data" in outcome.message
    app = tmp_path / "app"
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / "Set5")
    shutil.copytree(run.sr_dir("rlfn"), app / "input" / "res")
    outcome = score_program(app / "input", app / "output")
    assert outcome.exit_code == EXIT_SETUP and "dataset 'Set5' has no leaderboard column" in outcome.message
    assert not (app / "output" / SCORES_FILE).exists() and (app / "output" / DETAILED_FILE).exists()


# --------------------------------------------------------------------------- code phase: ingestion, then scoring


def test_worker_ingests_code_and_baseline_then_scores_score_final(run: Set5Run, tmp_path: Path, wheel: Path) -> None:
    edition = tmp_path / "set5_rules.yaml"
    edition.write_text(EDITION_YAML.replace("baseline: rlfn", "baseline: tiny_net"))
    _, bundle = _bundle(tmp_path, wheel, "--edition", str(edition))
    # ingestion container: the participant's code (bicubic), the LR inputs, and a small weight-free baseline
    # (tests/support/plugins/good/tiny_net.py) that the ingestion times alongside, in the same job
    ingestion = _container(tmp_path / "ingestion", bundle / "ingestion_program")
    code = ingestion / "ingested_program"
    code.mkdir()
    shutil.copy(REPO / "submissions" / "bicubic.py", code / "submission.py")
    (code / "metadata").write_text("description: bicubic x4\n")
    shutil.copytree(SHARED / "data" / "Set5" / "LR", ingestion / "input_data" / VALID)
    (ingestion / "input_data" / "baseline").mkdir()
    shutil.copy(PLUGINS / "good" / "tiny_net.py", ingestion / "input_data" / "baseline" / "submission.py")
    done = _run(_worker_command(bundle / "ingestion_program", ingestion) + FAST, ingestion)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bicubic: ok; DIV2K_LSDIR_valid ") and "\ntiny_net: ok; " in done.stdout
    manifest = json.loads((ingestion / "output" / INGESTION_MANIFEST).read_text())
    assert {k: manifest[k] for k in ("submission", "results", "sr", "baseline", "baseline_results")} == {
        "submission": "bicubic", "results": "results/bicubic.json", "sr": "sr/bicubic", "baseline": "tiny_net",
        "baseline_results": "baseline_results/tiny_net.json"}
    measured = read_result(ingestion / "output" / "results" / "bicubic.json")
    baseline = read_result(ingestion / "output" / "baseline_results" / "tiny_net.json")
    assert measured.datasets[VALID].psnr is None  # no HR in the ingestion container
    # scoring container: the HR images as reference data, the ingestion's output as res
    scoring = _container(tmp_path / "scoring", _task_program(bundle, 1))
    shutil.copytree(SHARED / "data" / "Set5" / "HR", scoring / "input" / "ref" / VALID)
    shutil.copytree(ingestion / "output", scoring / "input" / "res")
    # what the worker adds to the prediction output: the submission's own command never ran (its metadata has none)
    (scoring / "input" / "res" / "metadata").write_text(WORKER_METADATA.format(exit_code="null"))
    done = _run(_worker_command(_task_program(bundle, 1), scoring), scoring)
    assert done.returncode == 0, done.stderr
    scores = json.loads((scoring / "output" / SCORES_FILE).read_text())
    assert list(scores) == list(COLUMN_KEYS)
    assert scores["psnr_valid"] == run.records["bicubic"].datasets[VALID].psnr  # as `run` measured it
    runtime, base_runtime = measured.datasets[VALID].runtime_ms.mean, baseline.datasets[VALID].runtime_ms.mean
    flops, base_flops = measured.complexity.flops, baseline.complexity.flops
    params, base_params = measured.complexity.params, baseline.complexity.params
    assert params == 0 and base_params == 3 * 48 * 9 + 48 and base_flops > 0
    assert scores["runtime_ms"] == runtime and scores["params_m"] == 0.0 and scores["flops_g"] == flops / 1e9
    assert scores["score_runtime"] == math.exp(2 * runtime / base_runtime)
    assert scores["score_flops"] == math.exp(2 * flops / base_flops) and scores["score_params"] == 1.0
    assert scores["score_final"] == (0.8 * math.exp(2 * runtime / base_runtime) + 0.1 * math.exp(2 * flops / base_flops)
                                     + 0.1 * math.exp(2 * params / base_params))
    merged = read_result(scoring / "output" / "ntire_bench_results.json")
    first = merged.datasets[VALID].images[0]
    assert first.psnr == run.records["bicubic"].datasets[VALID].images[0].psnr and first.runtime_ms is not None


def _code_output(run: Set5Run, res: Path, submission: str, status: str = "ok", error: str | None = None,
                 baseline: str | None = None) -> None:
    """An ingestion output made from set5_run's files: results, SR images and the manifest."""
    record = read_result(run.results_dir / f"{submission}.json")
    record.status, record.error = status, error
    for row in record.datasets[VALID].images:
        row.psnr = row.psnr_y = row.ssim = row.ssim_y = None  # the ingestion has no HR
    atomic_write_json(res / "results" / f"{submission}.json", record.to_json())
    shutil.copytree(run.sr_dir(submission), res / "sr" / submission / VALID)
    manifest = {"schema": "ntire-bench/codabench-ingestion/v1", "status": "ok", "submission": submission,
                "results": f"results/{submission}.json", "sr": f"sr/{submission}", "baseline_results": None}
    if baseline:
        shutil.copy(run.results_dir / f"{baseline}.json", res / "baseline.json")
        manifest["baseline_results"] = "baseline.json"
    atomic_write_json(res / INGESTION_MANIFEST, manifest)


def test_baseline_timed_in_the_same_job_and_below_threshold(run: Set5Run, tmp_path: Path) -> None:
    edition = tmp_path / "rules.yaml"
    edition.write_text(EDITION_YAML)
    app = tmp_path / "app"
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / VALID)
    _code_output(run, app / "input" / "res", "bicubic", baseline="rlfn")
    outcome = score_program(app / "input", app / "output", str(edition), thresholds={VALID: 26.90})
    assert outcome.exit_code == EXIT_OK, outcome.message
    bicubic, rlfn = run.records["bicubic"].datasets[VALID], run.records["rlfn"].datasets[VALID]
    scores = json.loads((app / "output" / SCORES_FILE).read_text())
    assert scores["psnr_valid"] == bicubic.psnr and scores["score_final"] == NOT_RANKED  # 26.70 dB < 26.90 dB
    assert scores["score_runtime"] == math.exp(2 * bicubic.runtime_ms.mean / rlfn.runtime_ms.mean)
    assert outcome.notes[0].startswith("not ranked: PSNR 26.70 dB on DIV2K_LSDIR_valid is below the 26.90 dB threshold;")
    # under the edition's own 26.50 dB, the same figures rank (bicubic's own `reference` flag does not count here)
    outcome = score_program(app / "input", app / "output", str(edition))
    assert outcome.exit_code == EXIT_OK
    final = json.loads((app / "output" / SCORES_FILE).read_text())["score_final"]
    flops, base_flops = run.records["bicubic"].complexity.flops, run.records["rlfn"].complexity.flops
    params, base_params = run.records["bicubic"].complexity.params, run.records["rlfn"].complexity.params
    assert (params, base_params, base_flops) == (0, 317218, 19674859520)
    assert final == (0.8 * math.exp(2 * bicubic.runtime_ms.mean / rlfn.runtime_ms.mean)
                     + 0.1 * math.exp(2 * flops / base_flops) + 0.1 * math.exp(2 * params / base_params))


def test_code_phase_rejections_and_setup_errors(run: Set5Run, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / VALID)
    _code_output(run, app / "input" / "res", "rlfn", status=FAILED, error="img_001: the worker crashed")
    outcome = score_program(app / "input", app / "output", "ntire2024")
    assert (outcome.exit_code, outcome.message) == (EXIT_REJECTED, "submission rejected: your code failed: img_001: "
                                                                   "the worker crashed")
    shutil.rmtree(app / "input" / "res")
    _code_output(run, app / "input" / "res", "rlfn")
    outcome = score_program(app / "input", app / "output", "ntire2024")
    assert outcome.exit_code == EXIT_SETUP and "no baseline figures" in outcome.message
    shutil.copy(run.results_dir / "bicubic.json", app / "input" / "ref" / "baseline.json")
    outcome = score_program(app / "input", app / "output", "ntire2024")
    assert outcome.exit_code == EXIT_SETUP and "is 'bicubic', but the edition's baseline is 'rlfn'" in outcome.message
    assert not (app / "output" / SCORES_FILE).exists()


def test_a_code_submission_whose_own_command_ran_is_refused(run: Set5Run, tmp_path: Path) -> None:
    """A code submission whose metadata has a command: the worker runs it beside the ingestion, with the GPU and
    the output folder, and records its exit status in res/metadata; the scoring program refuses the result."""
    app = tmp_path / "app"
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / VALID)
    _code_output(run, app / "input" / "res", "bicubic", baseline="rlfn")
    metadata = app / "input" / "res" / "metadata"
    metadata.write_text(WORKER_METADATA.format(exit_code=0))
    outcome = score_program(app / "input", app / "output", "ntire2024", phase="code")
    assert (outcome.exit_code, outcome.message) == (EXIT_REJECTED, (
        "submission rejected: your submission's metadata has a command, which the worker ran beside the ingestion "
        "(exit code 0); remove the command: the organisers' ingestion program runs your code"))
    assert not (app / "output" / SCORES_FILE).exists()
    metadata.write_text("exitCode: [unclosed\n")
    outcome = score_program(app / "input", app / "output", "ntire2024", phase="code")
    assert outcome.exit_code == EXIT_SETUP and "the worker's metadata file is unreadable" in outcome.message
    metadata.write_text(WORKER_METADATA.format(exit_code="null"))  # no command of its own ran: scored
    edition = tmp_path / "rules.yaml"
    edition.write_text(EDITION_YAML)
    outcome = score_program(app / "input", app / "output", str(edition), phase="code")
    assert outcome.exit_code == EXIT_OK, outcome.message


def test_a_fixed_phase_never_trusts_a_manifest_it_should_not_see(run: Set5Run, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(SHARED / "data" / "Set5" / "HR", app / "input" / "ref" / VALID)
    shutil.copytree(run.sr_dir("rlfn"), app / "input" / "res")
    outcome = score_program(app / "input", app / "output", phase="code")
    assert outcome.exit_code == EXIT_REJECTED and "no ingestion output in" in outcome.message
    _code_output(run, app / "input" / "res", "rlfn", baseline="rlfn")  # an upload carrying forged figures
    outcome = score_program(app / "input", app / "output", phase="results")
    assert outcome.exit_code == EXIT_REJECTED
    assert "ntire_bench_ingestion.json: is not an image; upload only the PNG outputs" in outcome.message


def test_ingestion_refuses_what_it_cannot_run(tmp_path: Path, shared_data: Path) -> None:
    inputs = tmp_path / "input_data" / VALID
    inputs.mkdir(parents=True)
    (inputs / "0801x4.png").write_bytes((shared_data / "Set5" / "LR" / "img_001x4.png").read_bytes())
    code = tmp_path / "code"
    code.mkdir()
    options = IngestionOptions(sandbox="none")
    outcome = ingest_program(code, tmp_path / "input_data", tmp_path / "out", options=options)
    assert outcome.exit_code == EXIT_REJECTED and "holds no plugin" in outcome.message
    # the manifest says so, and the scoring program passes the reason on to the participant
    manifest = json.loads((tmp_path / "out" / INGESTION_MANIFEST).read_text())
    assert manifest["status"] == "rejected" and manifest["message"].startswith("the submission holds no plugin")
    shutil.copytree(tmp_path / "out", tmp_path / "input" / "res")
    shutil.copytree(shared_data / "Set5" / "HR", tmp_path / "input" / "ref" / VALID)
    scored = score_program(tmp_path / "input", tmp_path / "scored")
    assert scored.exit_code == EXIT_REJECTED and scored.message == f"submission rejected: {manifest['message']}"
    for name in ("a.py", "b.py"):
        shutil.copy(REPO / "submissions" / "bicubic.py", code / name)
    (code / "b.py").write_text((code / "b.py").read_text().replace('name="bicubic"', 'name="bicubic2"'))
    outcome = ingest_program(code, tmp_path / "input_data", tmp_path / "out", options=options)
    assert outcome.exit_code == EXIT_REJECTED and "declares 2 submissions (bicubic (a.py), bicubic2 (b.py))" in outcome.message
    (code / "b.py").unlink()
    (inputs / "0802.png").write_bytes(b"")
    outcome = ingest_program(code, tmp_path / "input_data", tmp_path / "out", options=options)
    assert outcome.exit_code == EXIT_SETUP and "0802.png: LR images must be named <name>x4.png" in outcome.message
    assert json.loads((tmp_path / "out" / INGESTION_MANIFEST).read_text())["status"] == "setup_error"


def test_scores_are_always_finite_numbers_codabench_can_store() -> None:
    record = SubmissionResult(submission="x", status="ok")
    row = {"eligible": True, "score": math.inf, "score_runtime": 3e12, "score_flops": math.nan, "score_params": 7.5,
           "runtime_ms": 12.0, "params_m": 0.3, "flops_g": 20.0}
    scores = leaderboard_scores(record, row)
    assert list(scores) == list(COLUMN_KEYS)
    assert scores == {"psnr_valid": 0.0, "psnr_test": 0.0, "score_final": NOT_RANKED, "score_runtime": NOT_RANKED,
                      "score_flops": NOT_RANKED, "score_params": 7.5, "runtime_ms": 12.0, "params_m": 0.3,
                      "flops_g": 20.0}
