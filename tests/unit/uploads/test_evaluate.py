"""Scoring uploaded SR images: bit-identical to `run`, one precise reason per bad file, the results format.

``set5_run`` (support/set5_run.py, also used by the Codabench programs' tests) runs rlfn and bicubic once
per session on Set5, named DIV2K_LSDIR_valid, with the runner's SR export, so both compare against one run.
"""

from __future__ import annotations

import dataclasses

import json
import math
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ntire_bench.cli.main import main
from ntire_bench.uploads.evaluate import (EvaluationResult, ReferenceDataError, ReferenceSet, evaluate_uploads, summarize_problems)
from ntire_bench.data.images import modcrop, read_image, write_image
from ntire_bench.metrics.quality import METRIC_KEYS, image_quality
from ntire_bench.results.records import FAILED, OK, SubmissionResult
from ntire_bench.results.store import read_result
from ntire_bench.uploads.intake import UploadProblem

from support.paths import SHARED
from support.set5_run import VALID, Set5Run, set5_run

FIX = "save the SR output as an 8-bit RGB PNG (3 channels, no alpha)"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Set5Run:
    return set5_run(tmp_path_factory.getbasetemp())


# --------------------------------------------------------------------------- agreement with run


@pytest.mark.parametrize("submission", ["rlfn", "bicubic"])
def test_uploads_of_run_sr_images_score_bit_identically(run: Set5Run, submission: str, tmp_path: Path) -> None:
    measured = run.records[submission].datasets[VALID]
    evaluation = evaluate_uploads(run.sr_dir(submission), run.spec, tmp_path, submission=submission)
    assert evaluation.ok and evaluation.problems == []
    scored = evaluation.result.datasets[VALID]
    assert [row.name for row in scored.images] == [row.name for row in measured.images] == [
        "img_001", "img_002", "img_003", "img_004", "img_005"]
    for ours, theirs in zip(scored.images, measured.images):
        assert [getattr(ours, k) for k in METRIC_KEYS] == [getattr(theirs, k) for k in METRIC_KEYS], ours.name
        assert ours.runtime_ms is None
    assert [getattr(scored, k) for k in METRIC_KEYS] == [getattr(measured, k) for k in METRIC_KEYS]
    assert (scored.num_images, scored.threshold, scored.runtime_ms) == (5, 26.90, None)


def test_the_run_itself_matches_the_official_figures(run: Set5Run, set5_reference: dict) -> None:
    """What evaluate reproduces bit for bit is itself the official evaluation (set5_reference.json)."""
    for name in ("rlfn", "bicubic"):
        official = set5_reference["models"][name]["Set5"]["mean"]
        measured = run.records[name].datasets[VALID]
        for key in METRIC_KEYS:
            assert getattr(measured, key) == pytest.approx(official[key], abs=1e-4), (name, key)  # CPU vs official float order


def test_cli_evaluate_zip_named_like_hr_writes_the_results_file(run: Set5Run, tmp_path: Path) -> None:
    upload = tmp_path / "team_a.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for png in sorted(run.sr_dir("rlfn").iterdir()):
            archive.write(png, f"outputs/{png.name.replace('x4', '')}")  # 0801.png naming, inside one folder
    out = tmp_path / "results"
    result = CliRunner().invoke(main, ["evaluate", str(upload), "--hr", str(SHARED / "data" / "Set5" / "HR"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = read_result(out / "team_a.json", strict=True)
    assert (record.submission, record.status, record.settings, record.error) == ("team_a", OK, None, None)
    assert record.datasets["HR"].psnr == run.records["rlfn"].datasets[VALID].psnr
    assert record.datasets["HR"].runtime_ms is None and record.complexity is None
    assert result.stdout.startswith(f"HR: PSNR {run.records['rlfn'].datasets[VALID].psnr:.4f} dB, PSNR-Y ")


def test_cli_evaluate_reports_problems_and_exits_1(run: Set5Run, tmp_path: Path) -> None:
    upload = tmp_path / "sr"
    upload.mkdir()
    for png in sorted(run.sr_dir("bicubic").iterdir())[1:]:
        (upload / png.name).write_bytes(png.read_bytes())
    registry = tmp_path / "datasets.yaml"
    registry.write_text(f"datasets:\n  {VALID}:\n    hr: {SHARED / 'data' / 'Set5' / 'HR'}\n")
    result = CliRunner().invoke(main, ["evaluate", str(upload), "--dataset", VALID, "--datasets-file", str(registry),
                                       "--out", str(tmp_path / "results"), "--name", "bad"])
    assert result.exit_code == 1
    missing = "img_001x4.png: missing: no upload for HR image img_001 (expected img_001x4.png or img_001.png)"
    assert result.stdout.splitlines() == [missing]
    assert f"upload not scored: 1 problem: {missing}" in result.stderr
    assert read_result(tmp_path / "results" / "bad.json").status == FAILED


def test_cli_evaluate_usage_errors_exit_2(tmp_path: Path) -> None:
    (tmp_path / "up").mkdir()
    runner = CliRunner()
    assert runner.invoke(main, ["evaluate", str(tmp_path / "up")]).exit_code == 2
    result = runner.invoke(main, ["evaluate", str(tmp_path / "up"), "--dataset", "DIV2K_LSDIR_vlaid",
                                  "--datasets-file", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "cannot be read" in result.stderr
    (tmp_path / "empty").mkdir()
    result = runner.invoke(main, ["evaluate", str(tmp_path / "up"), "--hr", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "holds no PNG/JPEG/BMP images for dataset empty" in result.stderr


# --------------------------------------------------------------------------- bad uploads, small synthetic set

NAMES = ("0801", "0802", "0803")
HW = (48, 64)


def _image(seed: int, h: int = HW[0], w: int = HW[1]) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture()
def hr(tmp_path: Path) -> ReferenceSet:
    folder = tmp_path / "HR"
    folder.mkdir()
    for i, name in enumerate(NAMES):
        write_image(folder / f"{name}.png", _image(i))
    return ReferenceSet.from_folder("valid", folder)


def _good_upload(folder: Path, hr: ReferenceSet) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(hr.hr_files):
        noisy = np.clip(read_image(path).astype(int) + (i + 1), 0, 255).astype(np.uint8)
        write_image(folder / f"{path.stem}x4.png", noisy)
    return folder


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def _failed(evaluation: EvaluationResult) -> list[str]:
    """The problems, after checking how a failed evaluation is recorded."""
    record = evaluation.result
    reasons = [p.reason for p in evaluation.problems]
    assert record.status == FAILED and record.warnings == reasons
    assert record.error == summarize_problems(evaluation.problems) and "\n" not in record.error
    assert all("\n" not in r for r in reasons)
    return reasons


def test_good_upload_scores_each_image_like_image_quality(tmp_path: Path, hr: ReferenceSet) -> None:
    evaluation = evaluate_uploads(_good_upload(tmp_path / "up", hr), hr, tmp_path / "work")
    assert evaluation.ok
    rows = evaluation.result.datasets["valid"].images
    for row, path in zip(rows, hr.hr_files):
        sr = torch.from_numpy(read_image(tmp_path / "up" / f"{path.stem}x4.png")).permute(2, 0, 1)
        expected = image_quality(sr, torch.from_numpy(read_image(path)).permute(2, 0, 1), border=4)
        assert {k: getattr(row, k) for k in METRIC_KEYS} == expected
    # a constant offset of 1, 2, 3 grey levels (no clipping in these pixels' bulk): PSNR falls as it grows
    assert rows[0].psnr > rows[1].psnr > rows[2].psnr


def test_missing_extra_and_misnamed_files(tmp_path: Path, hr: ReferenceSet) -> None:
    up = _good_upload(tmp_path / "up", hr)
    (up / "0803x4.png").unlink()
    (up / "notes.txt").write_text("hello")
    (up / "0899x4.png").write_bytes(_png(_image(9)))
    (up / "0802x2.png").write_bytes(_png(_image(9, 24, 32)))
    reasons = _failed(evaluate_uploads(up, hr, tmp_path / "work"))
    assert reasons == [
        "0802x2.png: is named for x2, but this is an x4 challenge; upload the x4 output as 0802x4.png",
        "0803x4.png: missing: no upload for HR image 0803 (expected 0803x4.png or 0803.png)",
        "0899x4.png: has no HR partner in this set (did you mean '0803x4.png'?); name each output after its LR "
        "input, e.g. 0801x4.png",
        "notes.txt: is not an image; upload only the PNG outputs",
    ]
    record = evaluate_uploads(up, hr, tmp_path / "work").result
    assert record.error.startswith("4 problems: 0802x2.png: is named for x2") and record.error.endswith(
        "; and 1 more (see the detailed results)")
    data = record.datasets["valid"]
    assert data.psnr is None and data.images[0].psnr is not None and data.images[2].psnr is None


@pytest.mark.parametrize(("array", "reason"), [
    (_image(0, 40, 64), "wrong size 40x64 (HxW); expected 48x64, the size of the HR image"),
    (_image(0, 64, 48), "wrong size 64x48 (HxW): height and width are swapped; expected 48x64"),
    (_image(0, 24, 32), "wrong scale: 24x32 (HxW) looks like an x2 output (LR 12x16 x2); expected the x4 output, 48x64"),
    (_image(0, 12, 16), "wrong scale: 12x16 (HxW) is the size of the LR input (x1); expected the x4 output, 48x64"),
    (_image(0)[:, :, 0], f"8-bit greyscale PNG; {FIX}"),
    (_image(0).astype(np.uint16) * 257, f"16-bit RGB PNG; {FIX}"),
    (np.dstack([_image(0), np.full(HW, 255, np.uint8)]), f"8-bit RGBA PNG; {FIX}"),
])
def test_wrong_size_scale_grey_16bit_and_rgba(tmp_path: Path, hr: ReferenceSet, array: np.ndarray, reason: str) -> None:
    up = _good_upload(tmp_path / "up", hr)
    (up / "0802x4.png").write_bytes(_png(array))
    assert _failed(evaluate_uploads(up, hr, tmp_path / "work")) == [f"0802x4.png: {reason}"]


def test_truncated_corrupt_and_transparent_pngs_fail_while_decoding(tmp_path: Path, hr: ReferenceSet) -> None:
    pil = pytest.importorskip("PIL.Image")
    up = _good_upload(tmp_path / "up", hr)
    png = (up / "0801x4.png").read_bytes()
    (up / "0801x4.png").write_bytes(png[: png.rfind(b"IDAT") + 40])  # the header is fine: only decoding tells
    (up / "0802x4.png").write_bytes(png[:33] + os.urandom(64) + b"IEND")
    pil.fromarray(_image(3)).save(up / "0803x4.png", transparency=(0, 0, 0))
    assert _failed(evaluate_uploads(up, hr, tmp_path / "work")) == [
        "0801x4.png: truncated PNG (no IEND chunk after the image data); re-export or re-download the file",
        "0802x4.png: not a decodable image (corrupt or unsupported format); use 8-bit PNG, JPEG or BMP",
        f"0803x4.png: 8-bit RGB PNG with transparency; {FIX}",
    ]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(("members", "reason"), [
    ({"team/SR/0801x4.png": b"x"}, "member 'team/SR/0801x4.png' is nested 2 folders deep; put the images at the zip "
                                   "root or inside one top-level folder"),
    ({"../0801x4.png": b"x"}, "member '../0801x4.png' contains '..' (path traversal); zip the files with plain "
                              "relative names"),
    ({"/etc/0801x4.png": b"x"}, "member '/etc/0801x4.png' has an absolute path; zip the files with relative names"),
])
def test_nested_and_path_traversal_zips_fail_without_raising(tmp_path: Path, hr: ReferenceSet, members: dict,
                                                             reason: str) -> None:
    archive = _zip(tmp_path / "up.zip", members)
    assert _failed(evaluate_uploads(archive, hr, tmp_path / "work")) == [f"{archive}: {reason}"]
    assert list((tmp_path / "work").iterdir()) == []  # nothing was written


def test_zip_bomb_fails_from_its_header(tmp_path: Path, hr: ReferenceSet) -> None:
    archive = _zip(tmp_path / "up.zip", {"0801x4.png": bytes(8 * 2**20)})
    compressed = zipfile.ZipFile(archive).getinfo("0801x4.png").compress_size
    ratio = 8 * 2**20 / compressed
    assert _failed(evaluate_uploads(archive, hr, tmp_path / "work")) == [
        f"{archive}: member '0801x4.png' expands {ratio:.0f}:1 ({compressed} -> {8 * 2**20} bytes), over the 100:1 "
        "limit (a zip bomb?); zip the PNG files as they are"]
    assert list((tmp_path / "work").iterdir()) == []


def test_zip_upload_is_extracted_scored_and_removed(tmp_path: Path, hr: ReferenceSet) -> None:
    up = _good_upload(tmp_path / "up", hr)
    archive = _zip(tmp_path / "up.zip", {f"sr/{p.name}": p.read_bytes() for p in sorted(up.iterdir())})
    zipped = evaluate_uploads(archive, hr, tmp_path / "work")
    plain = evaluate_uploads(up, hr, tmp_path / "work")
    assert zipped.ok and _measured(zipped) == _measured(plain)
    assert list((tmp_path / "work").iterdir()) == []
    # a folder holding only the zip (Codabench unpacks the upload once) is read the same way
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "up.zip").write_bytes(archive.read_bytes())
    assert _measured(evaluate_uploads(tmp_path / "res", hr, tmp_path / "work")) == _measured(plain)


def _measured(evaluation) -> dict:
    """The datasets' figures without the time they were measured at (two runs may straddle a second)."""
    return {name: dataclasses.replace(result, measured_at=None) for name, result in evaluation.result.datasets.items()}


def test_grey_hr_accepts_grey_sr_and_odd_hr_sizes_are_cropped(tmp_path: Path) -> None:
    folder = tmp_path / "HR"
    folder.mkdir()
    grey = _image(1)[:, :, 0]
    cv2.imwrite(str(folder / "g.png"), grey)
    odd = _image(2, 50, 67)
    write_image(folder / "odd.png", odd)
    reference = ReferenceSet.from_folder("set", folder)
    up = tmp_path / "up"
    up.mkdir()
    cv2.imwrite(str(up / "gx4.png"), np.clip(grey.astype(int) + 3, 0, 255).astype(np.uint8))
    write_image(up / "oddx4.png", modcrop(odd, 4)[::-1])  # 48x64: the HR cropped to a multiple of 4
    evaluation = evaluate_uploads(up, reference, tmp_path / "work")
    assert evaluation.ok, evaluation.problems
    g, o = evaluation.result.datasets["set"].images
    sr = torch.from_numpy(read_image(up / "oddx4.png")).permute(2, 0, 1)
    expected = image_quality(sr, torch.from_numpy(modcrop(odd, 4)).permute(2, 0, 1), border=4)
    assert {k: getattr(o, k) for k in METRIC_KEYS} == expected
    assert g.psnr_y is not None and math.isfinite(g.psnr)


def test_several_datasets_need_one_folder_each(tmp_path: Path, hr: ReferenceSet) -> None:
    other = ReferenceSet("test", hr.hr_files[:1])
    up = tmp_path / "up"
    _good_upload(up / "valid", hr)
    (up / "extra").mkdir()
    reasons = _failed(evaluate_uploads(up, [hr, other], tmp_path / "work"))
    assert reasons == ["test/: missing; put the test outputs in a folder named test",
                       "extra: not a dataset folder of this phase; the upload must hold exactly the folders valid/, test/"]
    _good_upload(up / "test", other)
    (up / "extra").rmdir()
    (up / "test" / "0801x4.png").unlink()
    assert _failed(evaluate_uploads(up, [hr, other], tmp_path / "work")) == [
        "test/0801x4.png: missing: no upload for HR image 0801 (expected 0801x4.png or 0801.png)"]


def test_reference_problems_are_the_organisers(tmp_path: Path, hr: ReferenceSet) -> None:
    with pytest.raises(ReferenceDataError, match="no such HR folder for dataset x"):
        ReferenceSet.from_folder("x", tmp_path / "nowhere")
    up = _good_upload(tmp_path / "up", hr)
    hr.hr_files[1].write_bytes(hr.hr_files[1].read_bytes()[:200])
    with pytest.raises(ReferenceDataError, match=r"0802.png: truncated PNG .* \(reference data\)$"):
        evaluate_uploads(up, hr, tmp_path / "work")


def test_summary_names_three_problems_then_counts() -> None:
    problems = [UploadProblem(f"{i}.png", f"{i}.png: missing") for i in range(5)]
    assert summarize_problems(problems) == ("5 problems: 0.png: missing; 1.png: missing; 2.png: missing; and 2 more "
                                            "(see the detailed results)")
    assert summarize_problems(problems[:1]) == "1 problem: 0.png: missing"


def test_results_file_round_trips_in_the_results_format(tmp_path: Path, hr: ReferenceSet) -> None:
    up = _good_upload(tmp_path / "up", hr)
    (up / "0801x4.png").unlink()
    record = evaluate_uploads(up, hr, tmp_path / "work", submission="team_b").result
    document = json.loads(json.dumps(record.to_json(), allow_nan=False))
    assert document["schema"] == "ntire-bench/results/v2" and document["status"] == "failed"
    assert document["settings"] is None and document["environment"]["device"] is None
    assert document["datasets"]["valid"]["runtime_ms"] is None
    assert SubmissionResult.from_json(document, strict=True) == record
