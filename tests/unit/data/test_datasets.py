"""Dataset registry, NTIRE pairing, generated LR and the built-in demo set."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ntire_bench.data.datasets import DatasetError, DatasetSpec, ensure_demo_images, load_dataset_specs, resolve_pairs
from ntire_bench.data.images import read_image, write_image


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _make_set(root, names=("0801", "0802"), lr=True):
    (root / "HR").mkdir(parents=True)
    if lr:
        (root / "LR").mkdir()
    for i, name in enumerate(names):
        write_image(root / "HR" / f"{name}.png", _image(32, 40, i))
        if lr:
            write_image(root / "LR" / f"{name}x4.png", _image(8, 10, i))


def test_yaml_paths_expand_env_and_defaults_relative_to_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("UNSET_VAR", raising=False)
    cfg = tmp_path / "cfg" / "datasets.yaml"
    cfg.parent.mkdir()
    cfg.write_text(
        "datasets:\n"
        "  A: {hr: '${MY_DATA}/A/HR', lr: '${MY_DATA}/A/LR', threshold: 26.9}\n"
        "  B: {hr: '${UNSET_VAR:-rel}/B/HR', scale: 4}\n"
        "  C: {hr: '${UNSET_VAR}/C/HR'}\n"
    )
    specs = load_dataset_specs(cfg)
    assert set(specs) == {"demo", "A", "B", "C"}
    assert specs["A"].hr_path() == tmp_path / "data" / "A" / "HR"
    assert specs["A"].threshold == 26.9
    assert specs["B"].hr_path() == (cfg.parent / "rel" / "B" / "HR").resolve()
    assert specs["B"].lr_path() is None
    with pytest.raises(DatasetError, match=r"dataset C: hr_dir uses \$\{UNSET_VAR\}, which is not set"):
        specs["C"].hr_path()


@pytest.mark.parametrize(
    "body, message",
    [
        ("datasets:\n  A: {lr: x}\n", r"datasets.A.hr: missing"),
        ("datasets:\n  A: {hr: x, scal: 4}\n", r"unknown field\(s\) \['scal'\]"),
        ("datasets:\n  A: {hr: x, scale: four}\n", r"datasets.A.scale: expected a positive integer"),
        ("datasets:\n  A: {hr: x, threshold: high}\n", r"datasets.A.threshold: expected a number"),
        ("datasets: [1, 2]\n", "expected a mapping"),
        ("datasets: {A: {hr: [}\n", "invalid YAML"),
    ],
)
def test_bad_registry_entries_fail_with_the_field(tmp_path, body, message):
    cfg = tmp_path / "datasets.yaml"
    cfg.write_text(body)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset_specs(cfg)
    assert str(cfg) in str(info.value) and "\n" not in str(info.value)


def test_ntire_pairing(tmp_path):
    _make_set(tmp_path / "S")
    spec = DatasetSpec(name="S", hr_dir=str(tmp_path / "S" / "HR"), lr_dir=str(tmp_path / "S" / "LR"))
    pairs = resolve_pairs(spec)
    assert [(p.name, p.lr_path.name, p.hr_path.name) for p in pairs] == [
        ("0801", "0801x4.png", "0801.png"), ("0802", "0802x4.png", "0802.png")]


def test_missing_lr_partner_and_orphan_lr_are_named(tmp_path):
    _make_set(tmp_path / "S")
    spec = DatasetSpec(name="S", hr_dir=str(tmp_path / "S" / "HR"), lr_dir=str(tmp_path / "S" / "LR"))
    (tmp_path / "S" / "LR" / "0802x4.png").unlink()
    with pytest.raises(DatasetError, match=r"0802.png: no LR partner 0802x4.png"):
        resolve_pairs(spec)
    write_image(tmp_path / "S" / "LR" / "0802x4.png", _image(8, 10))
    write_image(tmp_path / "S" / "LR" / "0999x4.png", _image(8, 10))
    with pytest.raises(DatasetError, match=r"0999x4.png: LR image has no HR partner"):
        resolve_pairs(spec)


def test_missing_hr_dir_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="HR directory .* does not exist"):
        resolve_pairs(DatasetSpec(name="S", hr_dir=str(tmp_path / "nope")))


def test_lr_is_generated_once_and_cached(tmp_path):
    _make_set(tmp_path / "S", lr=False)
    spec = DatasetSpec(name="S", hr_dir=str(tmp_path / "S" / "HR"), lr_dir=str(tmp_path / "S" / "LR"))
    cache = tmp_path / "cache"
    pairs = resolve_pairs(spec, cache_dir=cache)
    assert all(p.lr_path.is_relative_to(cache) for p in pairs)
    assert read_image(pairs[0].lr_path).shape == (8, 10, 3)
    stamps = [os.stat(p.lr_path).st_mtime_ns for p in pairs]
    again = resolve_pairs(spec, cache_dir=cache)
    assert [os.stat(p.lr_path).st_mtime_ns for p in again] == stamps
    # A changed HR image regenerates its LR.
    write_image(tmp_path / "S" / "HR" / "0801.png", _image(32, 40, 9))
    resolve_pairs(spec, cache_dir=cache)
    assert os.stat(pairs[0].lr_path).st_mtime_ns != stamps[0]
    assert os.stat(pairs[1].lr_path).st_mtime_ns == stamps[1]


def test_demo_set_is_built_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("NTIRE_BENCH_CACHE", str(tmp_path))
    specs = load_dataset_specs(None)
    pairs = resolve_pairs(specs["demo"])
    assert len(pairs) == 6
    for pair in pairs:
        hr, lr = read_image(pair.hr_path), read_image(pair.lr_path)
        assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0 and max(hr.shape[:2]) <= 256
        assert lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
    assert ensure_demo_images(tmp_path) == pairs[0].hr_path.parent


def test_bad_images_fail_before_any_model_runs(tmp_path):
    from ntire_bench.data.images import ImageError
    from ntire_bench.data.datasets import prepare_datasets

    _make_set(tmp_path / "S")
    spec = DatasetSpec(name="S", hr_dir=str(tmp_path / "S" / "HR"), lr_dir=str(tmp_path / "S" / "LR"))
    assert len(prepare_datasets([spec], progress=False)[0].pairs) == 2
    (tmp_path / "S" / "HR" / "0802.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="0802.png"):
        prepare_datasets([spec], progress=False)
    write_image(tmp_path / "S" / "HR" / "0802.png", _image(36, 40))  # 9 rows of LR would be needed
    with pytest.raises(ImageError, match=r"0802x4.png .* does not match .*0802.png"):
        prepare_datasets([spec], progress=False)
