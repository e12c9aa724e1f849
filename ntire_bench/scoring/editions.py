"""Editions: the scoring rules of a challenge year, as presets or YAML files, and PSNR thresholds.

An edition names the baseline, the weights of the runtime / FLOPs / params scores, the PSNR
threshold per dataset, the datasets whose runtimes are averaged into the scored runtime,
and how many timing passes the organisers run. docs/scoring.md documents every field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ntire_bench.results.records import SubmissionResult
from ntire_bench.util.text import did_you_mean

SCORED_METRICS = ("runtime", "flops", "params")
FROM_RESULTS = "from_results"
DEFAULT_EDITION = "default"
_FIELDS = {"name", "description", "baseline", "weights", "thresholds", "runtime_datasets", "runtime_dataset",
           "reference_device", "runs", "flop_convention", "scored_complexity", "psnr_margin_to_baseline",
           "nondeterminism", "rank_sums"}
RANKED_METRICS = ("runtime", "flops", "params", "activations", "memory")  # what a rank-sum sub-track may add up
FLOP_CONVENTIONS = ("fvcore", "ntire2023-hooks")  # complexity.rules.CONVENTIONS
SCORED_COMPLEXITY = ("official", "audited")
NONDETERMINISM = ("flag", "fail")


class EditionError(ValueError):
    """An edition or a threshold is malformed; the message is one line saying what to do."""


@dataclass(frozen=True)
class Edition:
    """A named scoring preset.

    ``runtime_datasets``: the scored runtime is the unweighted mean of these datasets'
    ``runtime_ms.mean`` (the organisers' "Ave. Time" over valid and test); empty means the
    image-count-weighted mean over the datasets a submission shares with the baseline.
    ``thresholds_from_results`` takes each dataset's threshold from the results instead.
    ``runs`` is how many timing passes the organisers run per method (the `run` default).
    """

    name: str
    baseline: str
    weights: Mapping[str, float]
    thresholds: Mapping[str, float] = field(default_factory=dict)
    thresholds_from_results: bool = False
    runtime_datasets: tuple[str, ...] = ()
    reference_device: str | None = None
    runs: int = 1
    description: str = ""
    flop_convention: str = "fvcore"  # the FLOP counter: "fvcore" (2024 on) or "ntire2023-hooks"
    scored_complexity: str = "official"  # "audited": score the figures the official rules are blind to
    psnr_margin_to_baseline: float | None = None  # thresholds: the baseline's PSNR less this, on its datasets
    nondeterminism: str = "flag"  # "fail": a submission whose output varies between passes is not ranked
    rank_sums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # sub-track -> metrics whose ranks add up

    def formula(self) -> str:
        """The final-score formula with this edition's weights, in plain text."""
        symbols = {"runtime": "runtime", "flops": "FLOPs", "params": "params"}
        return " + ".join(f"{self.weights[k]:g}·exp(2·{symbols[k]}/{symbols[k]}_baseline)" for k in SCORED_METRICS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _weights(data: Mapping[str, Any], where: str) -> dict[str, float]:
    weights = data.get("weights")
    if not isinstance(weights, Mapping) or set(weights) != set(SCORED_METRICS):
        raise EditionError(f"{where}: field 'weights' must give runtime, flops and params, e.g. "
                           "{runtime: 0.7, flops: 0.15, params: 0.15}")
    for key, value in weights.items():
        if _number(value) is None or value < 0:
            raise EditionError(f"{where}: weights.{key} must be a non-negative number, got {value!r}")
    if not math.isclose(sum(weights.values()), 1.0, abs_tol=1e-9):
        raise EditionError(f"{where}: weights must sum to 1 (so the baseline scores exp(2)), "
                           f"they sum to {sum(weights.values()):g}")
    return {k: float(weights[k]) for k in SCORED_METRICS}


def _thresholds(raw: Any, where: str) -> tuple[dict[str, float], bool]:
    if raw == FROM_RESULTS:
        return {}, True
    if raw is None:
        return {}, False
    if not isinstance(raw, Mapping):
        raise EditionError(f"{where}: field 'thresholds' must map dataset to dB, or be '{FROM_RESULTS}'")
    thresholds = {}
    for dataset, value in raw.items():
        if _number(value) is None:
            raise EditionError(f"{where}: thresholds.{dataset} must be a PSNR in dB, got {value!r}")
        thresholds[str(dataset)] = float(value)
    return thresholds, False


def _runtime_datasets(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    if "runtime_datasets" in data and "runtime_dataset" in data:
        raise EditionError(f"{where}: give runtime_datasets or runtime_dataset, not both")
    raw = data.get("runtime_datasets", data.get("runtime_dataset"))
    if raw is None:
        return ()
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise EditionError(f"{where}: field 'runtime_datasets' must be a list of dataset names, e.g. "
                           "[DIV2K_LSDIR_valid, DIV2K_LSDIR_test]")
    return tuple(names)


def edition_from_mapping(data: Any, name: str, where: str) -> Edition:
    """Build and check an edition from parsed YAML; EditionError names ``where`` and the field."""
    if not isinstance(data, Mapping):
        raise EditionError(f"{where}: an edition must be a mapping with baseline, weights and thresholds")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise EditionError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}")
    baseline = data.get("baseline")
    if not isinstance(baseline, str) or not baseline:
        raise EditionError(f"{where}: field 'baseline' must name the baseline submission, e.g. baseline: rlfn")
    runs = data.get("runs", 1)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise EditionError(f"{where}: field 'runs' must be a positive integer, got {runs!r}")
    thresholds, from_results = _thresholds(data.get("thresholds", {}), where)
    device = data.get("reference_device")
    choices = {key: str(data.get(key, default)) for key, default in
               (("flop_convention", "fvcore"), ("scored_complexity", "official"), ("nondeterminism", "flag"))}
    for key, allowed in (("flop_convention", FLOP_CONVENTIONS), ("scored_complexity", SCORED_COMPLEXITY),
                         ("nondeterminism", NONDETERMINISM)):
        if choices[key] not in allowed:
            raise EditionError(f"{where}: field '{key}' must be one of {', '.join(allowed)}, got {choices[key]!r}")
    rank_sums = data.get("rank_sums") or {}
    if not isinstance(rank_sums, Mapping) or not all(
            isinstance(k, str) and isinstance(v, list) and v and set(v) <= set(RANKED_METRICS) for k, v in rank_sums.items()):
        raise EditionError(f"{where}: field 'rank_sums' must map a sub-track name to a list of "
                           f"{', '.join(RANKED_METRICS)}, e.g. {{model_complexity: [params, flops]}}")
    margin = data.get("psnr_margin_to_baseline")
    if margin is not None and (_number(margin) is None or margin < 0):
        raise EditionError(f"{where}: field 'psnr_margin_to_baseline' must be a non-negative number of dB, got {margin!r}")
    return Edition(
        name=str(data.get("name") or name),
        baseline=baseline,
        weights=_weights(data, where),
        thresholds=thresholds,
        thresholds_from_results=from_results,
        runtime_datasets=_runtime_datasets(data, where),
        reference_device=str(device) if device else None,
        runs=runs,
        description=str(data.get("description") or ""),
        psnr_margin_to_baseline=float(margin) if margin is not None else None,
        rank_sums={str(k): tuple(v) for k, v in rank_sums.items()},
        **choices,
    )


def preset_editions() -> dict[str, Edition]:
    """The editions shipped in ``ntire_bench/scoring/editions.yaml``, by name."""
    text = resources.files("ntire_bench.scoring").joinpath("editions.yaml").read_text(encoding="utf-8")
    return {name: edition_from_mapping(body, name, f"editions.yaml ({name})")
            for name, body in yaml.safe_load(text).items()}


def load_edition(spec: Edition | str | os.PathLike | None = None) -> Edition:
    """Resolve ``spec``: an Edition, a preset name, a path to an edition YAML file, or None (default)."""
    if isinstance(spec, Edition):
        return spec
    text = os.fspath(spec if spec is not None else DEFAULT_EDITION)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        return _edition_from_file(path)
    presets = preset_editions()
    if text in presets:
        return presets[text]
    hint = did_you_mean(text, presets)
    hint = f"{hint} " if hint else ""
    raise EditionError(f"unknown edition '{text}': {hint}use one of {', '.join(presets)} or a path to an edition YAML file")


def _edition_from_file(path: Path) -> Edition:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EditionError(f"{path}: cannot read the edition file ({exc.strerror or exc}); check the path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise EditionError(f"{path}: not valid YAML{at}; fix the syntax") from None
    return edition_from_mapping(data, path.stem, str(path))


# ------------------------------------------------------------------------ thresholds


def parse_threshold(text: str) -> tuple[str, float]:
    """Parse ``DATASET=DB`` (e.g. ``DIV2K_LSDIR_valid=26.90``); raise ValueError when malformed."""
    dataset, sep, value = text.partition("=")
    dataset = dataset.strip()
    if not sep or not dataset:
        raise ValueError(f"'{text}' is not DATASET=DB, e.g. DIV2K_LSDIR_valid=26.90")
    try:
        db = float(value)
    except ValueError:
        raise ValueError(f"'{text}': '{value.strip()}' is not a PSNR in dB, e.g. DIV2K_LSDIR_valid=26.90") from None
    if not math.isfinite(db):
        raise ValueError(f"'{text}': the threshold must be a finite number of dB")
    return dataset, db


def recorded_thresholds(results: Iterable[SubmissionResult], skip: Iterable[str] = ()) -> dict[str, float]:
    """Each dataset's ``threshold`` as recorded in the results, except ``skip``; conflicting values are an error."""
    found: dict[str, tuple[float, str]] = {}
    skip = set(skip)
    for result in results:
        for dataset, record in result.datasets.items():
            if record.threshold is None or dataset in skip:
                continue
            if dataset in found and found[dataset][0] != record.threshold:
                raise EditionError(
                    f"results disagree on the {dataset} threshold ({found[dataset][0]:g} dB in {found[dataset][1]}, "
                    f"{record.threshold:g} dB in {result.label}); re-run with one datasets.yaml or pass "
                    f"--threshold {dataset}=DB")
            found.setdefault(dataset, (record.threshold, result.label))
    return {dataset: value for dataset, (value, _) in sorted(found.items())}


def resolve_thresholds(results: Iterable[SubmissionResult], edition: Edition,
                       overrides: Mapping[str, float] | None = None, baseline: str | None = None) -> dict[str, float]:
    """The PSNR thresholds in force: the edition's (or the recorded ones, or the baseline's PSNR less the edition's
    margin on every dataset it was measured on), then ``overrides``."""
    results = list(results)
    overrides = overrides or {}
    # Overridden datasets are skipped, so --threshold settles results that disagree.
    thresholds = recorded_thresholds(results, overrides) if edition.thresholds_from_results else dict(edition.thresholds)
    if edition.psnr_margin_to_baseline is not None:
        base = next((r for r in results if r.submission == (baseline or edition.baseline)), None)
        for dataset, record in (base.datasets.items() if base is not None else ()):
            if record.psnr is not None and math.isfinite(record.psnr):
                thresholds.setdefault(dataset, record.psnr - edition.psnr_margin_to_baseline)
    thresholds.update(overrides)
    return thresholds


def format_db(value: float, threshold: float | None = None) -> str:
    """A PSNR for messages: two decimals, more when two would hide that it misses ``threshold``."""
    digits = 2
    while threshold is not None and math.isfinite(value) and digits < 6 and round(value, digits) >= threshold:
        digits += 1
    return f"{value:.{digits}f}"


@dataclass(frozen=True)
class ThresholdMiss:
    """One threshold a result does not meet; ``psnr`` is None when the dataset was not evaluated."""

    submission: str
    dataset: str
    psnr: float | None
    threshold: float

    @property
    def reason(self) -> str:
        if self.psnr is None:
            return f"not evaluated on {self.dataset}"
        return (f"PSNR {format_db(self.psnr, self.threshold)} dB on {self.dataset} is below the "
                f"{format_db(self.threshold)} dB threshold")


def threshold_misses(result: SubmissionResult, thresholds: Mapping[str, float]) -> list[ThresholdMiss]:
    """The thresholds ``result`` misses, by RGB PSNR; a dataset not evaluated is a miss."""
    misses = []
    for dataset, threshold in thresholds.items():
        record = result.datasets.get(dataset)
        psnr = record.psnr if record is not None else None
        if psnr is None or math.isnan(psnr) or psnr < threshold:
            misses.append(ThresholdMiss(result.submission, dataset, None if psnr is None or math.isnan(psnr) else psnr,
                                        threshold))
    return misses
