"""Scoring uploaded SR images without a model: the Codabench development phase, or ``ntire-bench evaluate``.

An upload is a folder or ``.zip`` of x4 SR outputs named like the LR inputs (``0801x4.png``) or
like the HR images (``0801.png``). ``evaluate_uploads`` pairs them with the HR images of one or
more reference sets (uploads.py), checks every PNG header, then decodes and measures the pairs
with ``metrics.score_files``, the same metric code ``run`` uses, so a PNG of the SR image that
``run`` measured gets bit-identical PSNR/SSIM. The result is an ordinary ``SubmissionResult``
(no runtime, no settings) plus the list of per-file problems.

Policy: any problem fails the upload. A missing, extra, misnamed or unreadable file makes the
status ``failed``; ``error`` is a one-line summary (``3 problems: 0803x4.png: missing ...; ...``)
and every problem is listed, one line each, in ``warnings``. The images that could be measured
keep their per-image rows, but a dataset with a problem gets no mean: a PSNR over part of a
set is not comparable with one over all of it. A bad file never raises; only unusable
reference data (the organiser's side) raises ``ReferenceDataError``.
"""

from __future__ import annotations

import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ntire_bench.util.version import __version__
from ntire_bench.data.datasets import IMAGE_SUFFIXES, DatasetSpec, PreparedDataset
from ntire_bench.results.provenance import git_commit, harness_fingerprint
from ntire_bench.data.images import ImageError, read_image
from ntire_bench.metrics.quality import METRIC_KEYS, mean_quality, score_files
from ntire_bench.results.records import FAILED, OK, DatasetResult, Environment, ImageResult, SubmissionResult
from ntire_bench.uploads.checks import check_upload_header, read_png_header
from ntire_bench.uploads.intake import UploadError, UploadLimits, UploadProblem, match_uploads, open_upload
from ntire_bench.util.text import one_line

# How many problems the one-line summary names before "and N more".
SUMMARY_PROBLEMS = 3


class ReferenceDataError(ValueError):
    """The HR reference images are unusable (an organiser's problem, never a participant's); one line."""


@dataclass(frozen=True)
class ReferenceSet:
    """The HR images of one dataset, in name order: what uploads are scored against."""

    name: str
    hr_files: tuple[Path, ...]
    scale: int = 4
    threshold: float | None = None

    @classmethod
    def from_folder(cls, name: str, folder: Path, scale: int = 4, threshold: float | None = None) -> "ReferenceSet":
        """Every image (PNG, JPEG, BMP) directly in ``folder``; raises ReferenceDataError when there is none."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ReferenceDataError(f"{folder}: no such HR folder for dataset {name}; check the reference data")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ReferenceDataError(f"{folder}: holds no PNG/JPEG/BMP images for dataset {name}")
        stems = [p.stem for p in files]
        twice = next((s for s in stems if stems.count(s) > 1), None)
        if twice is not None:
            raise ReferenceDataError(f"{folder}: HR image {twice} is there twice (different suffixes); keep one")
        return cls(name, tuple(files), scale, threshold)

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> "ReferenceSet":
        """A dataset of ``datasets.yaml``: only its HR folder is read (uploads need no LR)."""
        return cls.from_folder(spec.name, spec.hr_path(), spec.scale, spec.threshold)

    @classmethod
    def from_prepared(cls, dataset: PreparedDataset) -> "ReferenceSet":
        """A dataset ``run`` prepared: the HR files of its pairs, in the same order."""
        return cls(dataset.spec.name, tuple(p.hr_path for p in dataset.pairs), dataset.spec.scale,
                   dataset.spec.threshold)

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.hr_files]


DatasetLike = ReferenceSet | DatasetSpec | PreparedDataset


def as_reference_set(dataset: DatasetLike) -> ReferenceSet:
    """A ReferenceSet for any way of naming a dataset."""
    if isinstance(dataset, ReferenceSet):
        return dataset
    if isinstance(dataset, PreparedDataset):
        return ReferenceSet.from_prepared(dataset)
    if isinstance(dataset, DatasetSpec):
        return ReferenceSet.from_spec(dataset)
    raise TypeError(f"expected a ReferenceSet, DatasetSpec or PreparedDataset, got {type(dataset).__name__}")


@dataclass
class EvaluationResult:
    """A scored upload: the results record (status ok or failed) and every per-file problem."""

    result: SubmissionResult
    problems: list[UploadProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.status == OK


def summarize_problems(problems: Sequence[UploadProblem], limit: int = SUMMARY_PROBLEMS) -> str:
    """One line: the count and the first ``limit`` reasons, e.g. ``2 problems: a.png: missing ...; b.png: ...``."""
    count = len(problems)
    shown = "; ".join(p.reason for p in problems[:limit])
    more = f"; and {count - limit} more (see the detailed results)" if count > limit else ""
    return f"{count} problem{'s' if count != 1 else ''}: {shown}{more}"


def upload_environment() -> Environment:
    """Provenance of a score computed from uploads: the harness and host, no measuring device."""
    return Environment(harness_version=__version__, harness_fingerprint=harness_fingerprint(), git_commit=git_commit(),
                       python=platform.python_version(), platform=platform.platform(), torch=torch.__version__,
                       host=platform.node())


def evaluate_uploads(upload: Path, datasets: DatasetLike | Sequence[DatasetLike], workdir: Path, *,
                     submission: str = "upload", limits: UploadLimits = UploadLimits(),
                     workers: int | None = None) -> EvaluationResult:
    """Score an upload of SR images against the HR images of ``datasets``.

    One dataset: the images sit in the folder or zip (or inside its one top-level folder).
    Several: the upload holds one folder per dataset, named exactly as the dataset. A zip is
    extracted under ``workdir`` and removed afterwards. Never raises for a bad upload (see the
    module docstring for the policy); raises ReferenceDataError for unusable HR data.
    """
    sets = [as_reference_set(d) for d in (datasets if isinstance(datasets, Sequence) else [datasets])]
    if not sets:
        raise ValueError("evaluate_uploads: no dataset to score against")
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluate_uploads: dataset names repeat ({', '.join(names)})")
    record = SubmissionResult(submission=submission, status=OK, environment=upload_environment())
    problems: list[UploadProblem] = []
    workdir = Path(workdir)
    before = set(workdir.iterdir()) if workdir.is_dir() else set()
    try:
        root = open_upload(Path(upload), workdir, limits)
    except UploadError as exc:
        problem = UploadProblem(Path(upload).name, str(exc))
        return _finish(record, [problem])
    extracted = (set(workdir.iterdir()) if workdir.is_dir() else set()) - before
    try:
        if len(sets) == 1:
            folders: dict[str, Path | None] = {sets[0].name: root}
        else:
            if root.name in names and not any((root / n).is_dir() for n in names):
                root = root.parent  # open_upload went into the only dataset folder there is
            folders, layout_problems = _dataset_folders(root, names)
            problems += layout_problems
        for reference in sets:
            folder = folders.get(reference.name)
            if folder is None:
                record.datasets[reference.name] = _empty_dataset(reference)
                continue
            prefix = f"{reference.name}/" if len(sets) > 1 else ""
            result, found = _score_dataset(folder, reference, prefix, workers)
            record.datasets[reference.name] = result
            problems += found
    finally:
        for made in extracted:  # only what open_upload extracted; never the upload itself
            shutil.rmtree(made, ignore_errors=True)
    return _finish(record, problems)


def _finish(record: SubmissionResult, problems: list[UploadProblem]) -> EvaluationResult:
    if problems:
        record.status = FAILED
        record.error = summarize_problems(problems)
        record.warnings = [p.reason for p in problems]
    return EvaluationResult(record, problems)


def _dataset_folders(root: Path, names: list[str]) -> tuple[dict[str, Path | None], list[UploadProblem]]:
    """Each dataset's folder in a multi-dataset upload, and what is missing or extra at its root."""
    folders: dict[str, Path | None] = {}
    problems = []
    entries = {e.name: e for e in root.iterdir()
               if e.name not in (".DS_Store", "__MACOSX", "metadata") and not e.name.startswith("._")}
    expected = ", ".join(f"{n}/" for n in names)
    for name in names:
        entry = entries.get(name)
        if entry is not None and entry.is_dir() and not entry.is_symlink():
            folders[name] = entry
        else:
            folders[name] = None
            problems.append(UploadProblem(f"{name}/", f"{name}/: missing; put the {name} outputs in a folder named {name}"))
    for entry_name in sorted(set(entries) - set(names)):
        problems.append(UploadProblem(entry_name, f"{entry_name}: not a dataset folder of this phase; "
                                                  f"the upload must hold exactly the folders {expected}"))
    return folders, problems


def _empty_dataset(reference: ReferenceSet) -> DatasetResult:
    return DatasetResult(num_images=len(reference.hr_files), threshold=reference.threshold,
                         measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                         images=[ImageResult(name=n) for n in reference.names])


@dataclass
class _HRInfo:
    size: tuple[int, int]  # (height, width) as stored
    grey: bool


def _hr_info(path: Path) -> _HRInfo:
    header = read_png_header(path)
    if header is not None:
        return _HRInfo((header.height, header.width), header.grey)
    try:  # JPEG or BMP reference: the size needs a decode (rare; NTIRE ships PNG)
        image = read_image(path)
    except ImageError as exc:
        raise ReferenceDataError(f"{exc} (reference data)") from None
    return _HRInfo(image.shape[:2], False)


def _score_dataset(folder: Path, reference: ReferenceSet, prefix: str, workers: int | None
                   ) -> tuple[DatasetResult, list[UploadProblem]]:
    """Match, check headers, then decode and measure one dataset's uploads."""
    scale = reference.scale
    hr_by_name = dict(zip(reference.names, reference.hr_files))
    match = match_uploads(folder, reference.names, scale)
    problems = list(match.problems)
    checked: list[tuple[str, Path, Path]] = []
    for hr_name, sr_path in match.pairs:
        hr_path = hr_by_name[hr_name]
        info = _hr_info(hr_path)
        expected = (info.size[0] - info.size[0] % scale, info.size[1] - info.size[1] % scale)
        problem = check_upload_header(sr_path, expected, scale, allow_grey=info.grey)
        if problem is not None:
            problems.append(problem)
        else:
            checked.append((hr_name, sr_path, hr_path))

    qualities: dict[str, dict[str, float]] = {}
    # HR is cropped to a multiple of the scale, as ``run`` crops it (a no-op for most sets).
    scored = score_files([(sr, hr) for _, sr, hr in checked], border=scale, workers=workers, crop_to=scale)
    outcomes = list(zip(checked, scored))
    for (hr_name, sr_path, hr_path), outcome in outcomes:
        if isinstance(outcome, Exception):
            problems.append(_decode_problem(outcome, sr_path, hr_path))
        else:
            qualities[hr_name] = outcome
    problems = [UploadProblem(f"{prefix}{p.file}", f"{prefix}{p.reason}") for p in problems]
    problems.sort(key=lambda p: p.file)

    rows = [ImageResult(name=n, **qualities.get(n, {})) for n in reference.names]
    complete = not problems and len(qualities) == len(reference.names)
    # The mean over images in HR-name order, exactly as ``run`` averages them.
    means = mean_quality([qualities[n] for n in reference.names]) if complete else dict.fromkeys(METRIC_KEYS)
    result = DatasetResult(num_images=len(reference.names), threshold=reference.threshold,
                           measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), images=rows, **means)
    return result, problems


def _decode_problem(exc: Exception, sr_path: Path, hr_path: Path) -> UploadProblem:
    """A decode or metric failure as one line about the uploaded file; HR failures are the organiser's."""
    text = one_line(exc, with_type=False)
    if text.startswith(f"{hr_path}: "):
        raise ReferenceDataError(f"{text} (reference data)")
    name = sr_path.name
    text = text.removeprefix(f"{sr_path}: ").replace(str(sr_path), name).replace(str(hr_path), f"HR {hr_path.name}")
    return UploadProblem(name, f"{name}: {text}")


