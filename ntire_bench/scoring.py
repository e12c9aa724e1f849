"""Scoring: editions, per-metric scores, eligibility and ranks.

Each of runtime, FLOPs and params is scored ``exp(2 * value / baseline_value)`` and the
final score is their weighted sum; lower is better and the baseline scores
``exp(2) = 7.389`` everywhere. An *edition* names the baseline, the weights, the PSNR
thresholds and the runtime dataset. Everything here works on results dictionaries (the
contract in docs/results-format.md) and never re-measures; docs/scoring.md has the rules.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import yaml

from . import __version__
from . import results as results_io

SCORE_KEYS = ("runtime", "flops", "params")
FROM_RESULTS = "from_results"
DEFAULT_EDITION = "default"

# A metrics CSV (published figures) maps its two PSNR columns onto these datasets.
CSV_COLUMNS = ("submission", "psnr_valid", "psnr_test", "runtime_ms", "params_m", "flops_g")
CSV_DATASETS = {"psnr_valid": "DIV2K_LSDIR_valid", "psnr_test": "DIV2K_LSDIR_test"}

# leaderboard.csv columns, in order; one ``psnr_<dataset>`` column per dataset follows.
LEADERBOARD_COLUMNS = (
    "rank", "submission", "eligible", "reason",
    "score", "score_runtime", "score_flops", "score_params",
    "rank_runtime", "rank_flops", "rank_params",
    "runtime_ms", "params_m", "flops_g",
)
PSNR_PREFIX = "psnr_"

# Scores equal to this many decimals share a rank: a weighted mean of the same runtimes
# summed in another order must not break a tie.
TIE_DECIMALS = 10


class ScoringError(Exception):
    """Results or an edition cannot be scored; the message is one line saying what to do."""


# --------------------------------------------------------------------------- editions


@dataclass(frozen=True)
class Edition:
    """A named scoring preset: baseline, score weights, PSNR thresholds, runtime dataset.

    ``thresholds_from_results`` takes each dataset's threshold from the ``threshold``
    recorded in the results instead of ``thresholds``.
    """

    name: str
    baseline: str
    weights: Mapping[str, float]
    thresholds: Mapping[str, float] = field(default_factory=dict)
    thresholds_from_results: bool = False
    runtime_dataset: str | None = None
    reference_device: str | None = None
    description: str = ""

    def formula(self) -> str:
        """The final-score formula with this edition's weights, in plain text."""
        symbols = {"runtime": "runtime", "flops": "FLOPs", "params": "params"}
        terms = [f"{self.weights[k]:g}·exp(2·{symbols[k]}/{symbols[k]}_baseline)" for k in SCORE_KEYS]
        return " + ".join(terms)


def _edition_from_mapping(data: Any, name: str, where: str) -> Edition:
    if not isinstance(data, Mapping):
        raise ScoringError(f"{where}: an edition must be a mapping with baseline, weights and thresholds")
    known = {"name", "description", "baseline", "weights", "thresholds", "runtime_dataset", "reference_device"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScoringError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    baseline = data.get("baseline")
    if not isinstance(baseline, str) or not baseline:
        raise ScoringError(f"{where}: field 'baseline' must name the baseline submission, e.g. baseline: rlfn")

    weights = data.get("weights")
    if not isinstance(weights, Mapping) or set(weights) != set(SCORE_KEYS):
        raise ScoringError(f"{where}: field 'weights' must give runtime, flops and params, e.g. "
                           "{runtime: 0.7, flops: 0.15, params: 0.15}")
    for key, value in weights.items():
        if _number(value) is None or value < 0:
            raise ScoringError(f"{where}: weights.{key} must be a non-negative number, got {value!r}")
    if not math.isclose(sum(weights.values()), 1.0, abs_tol=1e-9):
        raise ScoringError(f"{where}: weights must sum to 1 (so the baseline scores exp(2)), "
                           f"they sum to {sum(weights.values()):g}")

    raw = data.get("thresholds", {})
    from_results = raw == FROM_RESULTS
    thresholds: dict[str, float] = {}
    if not from_results:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ScoringError(f"{where}: field 'thresholds' must map dataset to dB, or be '{FROM_RESULTS}'")
        for dataset, value in raw.items():
            if _number(value) is None:
                raise ScoringError(f"{where}: thresholds.{dataset} must be a PSNR in dB, got {value!r}")
            thresholds[str(dataset)] = float(value)

    runtime_dataset = data.get("runtime_dataset")
    if runtime_dataset is not None and not isinstance(runtime_dataset, str):
        raise ScoringError(f"{where}: field 'runtime_dataset' must be a dataset name or null")
    return Edition(
        name=str(data.get("name") or name),
        baseline=baseline,
        weights={k: float(weights[k]) for k in SCORE_KEYS},
        thresholds=thresholds,
        thresholds_from_results=from_results,
        runtime_dataset=runtime_dataset,
        reference_device=data.get("reference_device"),
        description=str(data.get("description") or ""),
    )


def preset_editions() -> dict[str, Edition]:
    """The editions shipped in ``ntire_bench/editions.yaml``, by name."""
    text = resources.files("ntire_bench").joinpath("editions.yaml").read_text(encoding="utf-8")
    return {name: _edition_from_mapping(body, name, f"editions.yaml ({name})")
            for name, body in yaml.safe_load(text).items()}


def load_edition(spec: Edition | str | os.PathLike | None = None) -> Edition:
    """Resolve ``spec``: an Edition, a preset name, a path to an edition YAML file, or None (default)."""
    if isinstance(spec, Edition):
        return spec
    if spec is None:
        spec = DEFAULT_EDITION
    text = os.fspath(spec)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        return _edition_from_file(path)
    presets = preset_editions()
    if text in presets:
        return presets[text]
    close = difflib.get_close_matches(text, list(presets), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ScoringError(f"unknown edition '{text}': {hint}use one of {', '.join(presets)} or a path to an edition YAML file")


def _edition_from_file(path: Path) -> Edition:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScoringError(f"{path}: cannot read the edition file ({exc.strerror or exc}); check the path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScoringError(f"{path}: not valid YAML{at}; fix the syntax") from None
    return _edition_from_mapping(data, path.stem, str(path))


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


# ---------------------------------------------------------------------------- inputs


def _number(value: Any, allow_inf: bool = False) -> float | None:
    """``value`` as a float when it is a real number (never bool or NaN), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        return None
    return value


def _source(result: Mapping[str, Any]) -> str:
    """Where a result came from, for error messages: its file when known, else its name."""
    if isinstance(result.get("_path"), str):
        return Path(result["_path"]).name
    if isinstance(result.get("_source"), str):
        return result["_source"]
    return f"submission '{result.get('submission')}'"


def read_results(results_dir: str | os.PathLike, strict: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The results in ``results_dir`` and a one-line note per unusable file.

    By default unusable files are set aside by ``results.load_results`` and noted. With
    ``strict`` (the gate) the first unusable file raises ScoringError and nothing is moved,
    so running the gate again cannot pass on the same broken directory.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = results_io.load_results(Path(results_dir), strict=strict)
        except results_io.ResultsError as exc:
            raise ScoringError(str(exc)) from None
    return loaded, [str(w.message) for w in caught]


def load_metrics_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Turn a table of published figures into results-shaped dicts that ``score_results`` accepts.

    Columns: ``submission,psnr_valid,psnr_test,runtime_ms,params_m,flops_g``. An empty PSNR
    cell means "not evaluated"; the single runtime per row is scored as-is.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise ScoringError(f"{path}: missing column(s) {', '.join(missing)}; the header must be {','.join(CSV_COLUMNS)}")
            reader.fieldnames = header
            rows = list(reader)
    except OSError as exc:
        raise ScoringError(f"{path}: cannot read the metrics file ({exc.strerror or exc}); check the path") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ScoringError(f"{path}: not a readable CSV file ({exc}); save it as UTF-8 CSV") from None

    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):  # the header is row 1, as in a spreadsheet
        name = (row.get("submission") or "").strip()
        if not name:
            raise ScoringError(f"{path}: row {line}, column submission: empty; give every row a submission name")
        if name in seen:
            raise ScoringError(f"{path}: row {line}, column submission: '{name}' appears twice; keep one row per submission")
        seen.add(name)

        def cell(column: str, allow_inf: bool = False) -> float | None:
            text = (row.get(column) or "").strip()
            if not text:
                return None
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if math.isnan(value) or (math.isinf(value) and not allow_inf) or (not allow_inf and value < 0):
                raise ScoringError(f"{path}: row {line}, column {column}: '{text}' is not a valid number; "
                                   "write a plain non-negative number or leave the cell empty")
            return value

        datasets = {}
        for column, dataset in CSV_DATASETS.items():
            psnr = cell(column, allow_inf=True)
            if psnr is not None:
                datasets[dataset] = {"psnr": psnr, "threshold": None, "num_images": None}
        params_m, flops_g = cell("params_m"), cell("flops_g")
        results.append({
            "schema": "ntire-bench/metrics-csv",
            "submission": name,
            "status": "ok",
            "error": None,
            "reference": False,
            "params": None if params_m is None else params_m * 1e6,
            "flops": None if flops_g is None else flops_g * 1e9,
            "runtime_ms": cell("runtime_ms"),
            "datasets": datasets,
            "environment": {},
            "_source": f"{path.name} row {line}",
        })
    if not results:
        raise ScoringError(f"{path}: no rows below the header; add one row per submission")
    return results


# ------------------------------------------------------------------------ thresholds


def _datasets(result: Mapping[str, Any]) -> Mapping[str, Any]:
    datasets = result.get("datasets")
    return datasets if isinstance(datasets, Mapping) else {}


def recorded_thresholds(results: Iterable[Mapping[str, Any]], skip: Iterable[str] = ()) -> dict[str, float]:
    """Each dataset's ``threshold`` as recorded in the results, except ``skip``; conflicting values are an error."""
    found: dict[str, tuple[float, str]] = {}
    skip = set(skip)
    for result in results:
        for dataset, record in _datasets(result).items():
            value = _number(record.get("threshold")) if isinstance(record, Mapping) else None
            if value is None or dataset in skip:
                continue
            if dataset in found and found[dataset][0] != value:
                raise ScoringError(
                    f"results disagree on the {dataset} threshold ({found[dataset][0]:g} dB in {found[dataset][1]}, "
                    f"{value:g} dB in {_source(result)}); re-run with one datasets.yaml or pass --threshold {dataset}=DB")
            found.setdefault(dataset, (value, _source(result)))
    return {dataset: value for dataset, (value, _) in sorted(found.items())}


def resolve_thresholds(results: Iterable[Mapping[str, Any]], edition: Edition,
                       overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The PSNR thresholds in force: the edition's (or the recorded ones), then ``overrides``."""
    overrides = overrides or {}
    # Overridden datasets are skipped, so --threshold settles results that disagree.
    thresholds = recorded_thresholds(results, overrides) if edition.thresholds_from_results else dict(edition.thresholds)
    thresholds.update(overrides)
    return thresholds


def _db(value: float, threshold: float | None = None) -> str:
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
        return f"PSNR {_db(self.psnr, self.threshold)} dB on {self.dataset} is below the {_db(self.threshold)} dB threshold"


def threshold_misses(result: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[ThresholdMiss]:
    """The thresholds ``result`` misses, by RGB ``psnr``; a dataset not evaluated is a miss."""
    misses = []
    datasets = _datasets(result)
    for dataset, threshold in thresholds.items():
        record = datasets.get(dataset)
        psnr = _number(record.get("psnr"), allow_inf=True) if isinstance(record, Mapping) else None
        if psnr is None or psnr < threshold:
            misses.append(ThresholdMiss(str(result.get("submission")), dataset, psnr, threshold))
    return misses


def _status_reason(result: Mapping[str, Any]) -> str | None:
    """Why a result is listed but never ranked, from its status alone; None when it may be ranked."""
    status = result.get("status")
    error = result.get("error")
    if status == "failed":
        return f"failed: {error or 'no reason recorded'}"
    if status == "no_weights":
        return f"no weights: {error}" if error else "no weights (checkpoint not found)"
    if status != "ok":
        return f"unknown status {status!r}"
    if result.get("reference"):
        return "reference (listed, never ranked)"
    return None


# --------------------------------------------------------------------------- the gate


@dataclass(frozen=True)
class GateFailure:
    """One reason the gate fails: a missed threshold, or a submission whose run failed."""

    submission: str
    reason: str
    dataset: str | None = None
    psnr: float | None = None
    threshold: float | None = None

    def line(self) -> str:
        """One line for the terminal: submission, dataset, its PSNR and the threshold."""
        if self.dataset is None:
            return f"FAIL {self.submission}: {self.reason}"
        psnr = "not evaluated" if self.psnr is None else f"PSNR {_db(self.psnr, self.threshold)} dB"
        return f"FAIL {self.submission} {self.dataset}: {psnr}, threshold {_db(self.threshold)} dB"


@dataclass(frozen=True)
class GateReport:
    """What the gate checked and what failed; ``passed`` is the verdict."""

    thresholds: dict[str, float]
    checked: list[str]
    skipped: list[tuple[str, str]]
    failures: list[GateFailure]

    @property
    def passed(self) -> bool:
        return not self.failures


def check_gate(results: list[Mapping[str, Any]], edition: Edition | str | os.PathLike | None = None,
               thresholds: Mapping[str, float] | None = None) -> GateReport:
    """Check every evaluated submission (status ok, not reference) against the thresholds.

    A failed run fails the gate with its reason; no_weights and reference results are
    skipped. Raise ScoringError when there is nothing to check at all.
    """
    edition = load_edition(edition)
    if not results:
        raise ScoringError("no results to gate; run `ntire-bench run` first")
    in_force = resolve_thresholds(results, edition, thresholds)
    checked, skipped, failures = [], [], []
    for result in results:
        name = str(result.get("submission"))
        if result.get("status") == "failed":
            failures.append(GateFailure(name, _status_reason(result) or "failed"))
            continue
        reason = _status_reason(result)
        if reason is not None:
            skipped.append((name, reason))
            continue
        checked.append(name)
        failures.extend(GateFailure(m.submission, m.reason, m.dataset, m.psnr, m.threshold)
                        for m in threshold_misses(result, in_force))
    if not checked and not failures:
        raise ScoringError("nothing to gate: no submission finished with status ok; "
                           "check the run's output (" + "; ".join(f"{n}: {r}" for n, r in skipped) + ")")
    return GateReport(in_force, checked, skipped, failures)


# --------------------------------------------------------------------------- scoring


def metric_score(value: float, baseline_value: float) -> float:
    """``exp(2 * value / baseline_value)``: 7.389 for the baseline, lower is better."""
    return math.exp(2.0 * value / baseline_value)


def final_score(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted sum of the runtime, flops and params scores."""
    return sum(weights[key] * scores[key] for key in SCORE_KEYS)


def _dataset_runtimes(result: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``{dataset: (runtime_ms.mean, num_images)}`` for every dataset with a measured runtime."""
    found = {}
    for dataset, record in _datasets(result).items():
        if not isinstance(record, Mapping) or not isinstance(record.get("runtime_ms"), Mapping):
            continue
        mean = _number(record["runtime_ms"].get("mean"))
        if mean is not None:
            found[dataset] = (mean, _number(record.get("num_images")) or 1.0)
    return found


def scored_runtimes(result: Mapping[str, Any], baseline: Mapping[str, Any],
                    runtime_dataset: str | None) -> tuple[float | None, float | None]:
    """The runtime scored for ``result`` and the baseline runtime it is compared with (ms).

    A single top-level ``runtime_ms`` (metrics CSV) is used as-is. Otherwise the edition's
    runtime dataset's ``runtime_ms.mean``; without one, the mean over the datasets both
    have, weighted by the submission's image count, for the submission and the baseline alike.
    """
    own_flat, base_flat = _number(result.get("runtime_ms")), _number(baseline.get("runtime_ms"))
    if own_flat is not None or base_flat is not None:
        return own_flat, base_flat
    own, base = _dataset_runtimes(result), _dataset_runtimes(baseline)
    if runtime_dataset is not None:
        return (own[runtime_dataset][0] if runtime_dataset in own else None,
                base[runtime_dataset][0] if runtime_dataset in base else None)
    common = [d for d in own if d in base]
    if not common:
        return None, None
    total = sum(own[d][1] for d in common)
    return (sum(own[d][0] * own[d][1] for d in common) / total,
            sum(base[d][0] * own[d][1] for d in common) / total)


def _find_baseline(results: list[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    exact = [r for r in results if r.get("submission") == name]
    matches = exact or [r for r in results if str(r.get("submission")).lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    names = sorted(str(r.get("submission")) for r in results)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ScoringError(f"baseline '{name}' is not among the results ({', '.join(names)}); {hint}"
                       "run the baseline on the same machine or pass --baseline NAME")


def _check_unique(results: list[Mapping[str, Any]]) -> None:
    by_name: dict[str, list[str]] = {}
    for result in results:
        by_name.setdefault(str(result.get("submission")), []).append(_source(result))
    twice = {n: s for n, s in by_name.items() if len(s) > 1}
    if twice:
        name, sources = next(iter(twice.items()))
        raise ScoringError(f"submission '{name}' appears more than once ({', '.join(sources)}); keep one results file per submission")


def _environment(result: Mapping[str, Any]) -> Mapping[str, Any]:
    env = result.get("environment")
    return env if isinstance(env, Mapping) else {}


def _check_one_device(results: list[Mapping[str, Any]]) -> str:
    """The one device the results were measured on; mixed devices are an error."""
    by_device: dict[str, list[str]] = {}
    for result in results:
        env = _environment(result)
        name = env.get("device_name") or env.get("device")
        if name:
            by_device.setdefault(str(name), []).append(_source(result))
    if len(by_device) > 1:
        parts = "; ".join(f"{device}: {', '.join(sources)}" for device, sources in by_device.items())
        raise ScoringError(f"results come from different devices ({parts}); runtimes are only comparable "
                           "on one device, so score each device's results directory separately")
    return next(iter(by_device), "unknown")


def _distinct(results: list[Mapping[str, Any]], key: str) -> str | None:
    values = sorted({str(_environment(r)[key]) for r in results if _environment(r).get(key)})
    return ", ".join(values) or None


@dataclass
class Leaderboard:
    """A scored leaderboard: ``table`` (one row per submission, ranked rows first) plus provenance."""

    table: pd.DataFrame
    edition: Edition
    baseline: str
    thresholds: dict[str, float]
    datasets: list[str]
    device: str
    harness_version: str | None
    git_commit: str | None
    torch_version: str | None
    baseline_metrics: dict[str, float]
    runtime_rule: str
    source: str | None = None
    scored_with: str = __version__
    generated_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def ranked(self) -> pd.DataFrame:
        """The eligible rows, best first."""
        return self.table[self.table["eligible"]]

    def metadata(self) -> dict[str, Any]:
        """Provenance and settings as plain JSON-ready values."""
        return {
            "edition": self.edition.name,
            "edition_description": self.edition.description,
            "baseline": self.baseline,
            "weights": dict(self.edition.weights),
            "formula": self.edition.formula(),
            "thresholds_db": dict(self.thresholds),
            "runtime_rule": self.runtime_rule,
            "datasets": list(self.datasets),
            "device": self.device,
            "reference_device": self.edition.reference_device,
            "harness_version": self.harness_version,
            "git_commit": self.git_commit,
            "torch": self.torch_version,
            "baseline_metrics": dict(self.baseline_metrics),
            "source": self.source,
            "scored_with": f"ntire-bench {self.scored_with}",
            "generated_at": self.generated_at,
        }


_INELIGIBLE_ORDER = {"ok": 0, "reference": 1, "no_weights": 2, "failed": 3}


@dataclass(frozen=True)
class _Context:
    """What every row is scored against: the edition, thresholds and the baseline's measurements."""

    edition: Edition
    thresholds: Mapping[str, float]
    datasets: list[str]
    baseline: Mapping[str, Any]
    flops: float
    params: float
    flat_runtime: bool  # one runtime per entry (metrics CSV) rather than per dataset
    runtime_dataset: str | None  # the dataset whose runtime is scored, None for the shared-datasets rule


def _runtime_rule(ctx: _Context) -> str:
    if ctx.flat_runtime:
        return "runtime_ms as given in the metrics table"
    if ctx.runtime_dataset:
        return f"runtime_ms.mean on {ctx.runtime_dataset}"
    rule = "image-count-weighted mean of runtime_ms.mean over the datasets the submission and the baseline both have"
    if ctx.edition.runtime_dataset:
        rule += f" (the baseline was not measured on {ctx.edition.runtime_dataset}, the edition's runtime dataset)"
    return rule


def _score_row(result: Mapping[str, Any], ctx: _Context) -> dict[str, Any]:
    """One leaderboard row (ranks excepted) for ``result``."""
    runtime, base_runtime = scored_runtimes(result, ctx.baseline, ctx.runtime_dataset)
    flops, params = _number(result.get("flops")), _number(result.get("params"))
    scores = {
        "runtime": metric_score(runtime, base_runtime) if runtime is not None and base_runtime else math.nan,
        "flops": metric_score(flops, ctx.flops) if flops is not None else math.nan,
        "params": metric_score(params, ctx.params) if params is not None else math.nan,
    }
    reason = _status_reason(result)
    if reason is None:
        problems = [m.reason for m in threshold_misses(result, ctx.thresholds)]
        if runtime is None:
            problems.append(f"no runtime measured on {ctx.runtime_dataset}"
                            if ctx.runtime_dataset and not ctx.flat_runtime
                            else "no runtime measured on a dataset the baseline also has")
        problems += [f"no {label} measured" for label, v in (("FLOPs", flops), ("params", params)) if v is None]
        reason = "; ".join(problems) or None
    status = result.get("status")
    row = {
        "submission": str(result.get("submission")),
        "eligible": reason is None,
        "reason": reason or "",
        "score": final_score(scores, ctx.edition.weights),
        "score_runtime": scores["runtime"],
        "score_flops": scores["flops"],
        "score_params": scores["params"],
        "runtime_ms": runtime if runtime is not None else math.nan,
        "params_m": params / 1e6 if params is not None else math.nan,
        "flops_g": flops / 1e9 if flops is not None else math.nan,
        "_order": _INELIGIBLE_ORDER.get("reference" if status == "ok" and result.get("reference") else status, 4),
    }
    for dataset in ctx.datasets:
        record = _datasets(result).get(dataset)
        psnr = _number(record.get("psnr"), allow_inf=True) if isinstance(record, Mapping) else None
        row[PSNR_PREFIX + dataset] = psnr if psnr is not None else math.nan
    return row


def _rank(rows: list[dict[str, Any]], datasets: list[str]) -> pd.DataFrame:
    """Rank the eligible rows on each track and order the table: ranked rows first, then the rest."""
    table = pd.DataFrame(rows)
    eligible = table["eligible"]
    for column, by in (("rank", "score"), ("rank_runtime", "score_runtime"),
                       ("rank_flops", "score_flops"), ("rank_params", "score_params")):
        ranks = table.loc[eligible, by].round(TIE_DECIMALS).rank(method="min")
        table[column] = pd.Series(ranks, index=table.index).astype("Int64")
    table["_ineligible"] = ~eligible
    table = table.sort_values(["_ineligible", "rank", "_order", "score", "submission"], na_position="last", kind="stable")
    return table[list(LEADERBOARD_COLUMNS) + [PSNR_PREFIX + d for d in datasets]].reset_index(drop=True)


def score_results(results: list[Mapping[str, Any]], edition: Edition | str | os.PathLike | None = None,
                  baseline: str | None = None, thresholds: Mapping[str, float] | None = None,
                  source: str | None = None) -> Leaderboard:
    """Score and rank ``results`` (dicts in the results-file format) under ``edition``.

    ``baseline`` overrides the edition's baseline name; ``thresholds`` adds to or overrides
    its PSNR thresholds (dataset -> dB). The baseline's own measured runtime, FLOPs and
    params normalise every score, whether or not it is itself eligible. Raise ScoringError
    when the baseline is absent or unmeasured, or the results mix devices.
    """
    edition = load_edition(edition)
    results = list(results)
    if not results:
        raise ScoringError("no results to score; run `ntire-bench run` first or pass --results DIR")
    _check_unique(results)
    device = _check_one_device(results)
    base = _find_baseline(results, baseline or edition.baseline)
    base_name = str(base.get("submission"))
    in_force = resolve_thresholds(results, edition, thresholds)
    flat = _number(base.get("runtime_ms")) is not None

    # The edition's runtime dataset when the baseline measured it; otherwise the datasets
    # shared with the baseline, so results on other sets can still be scored (the missing
    # threshold datasets already make every row ineligible, with the reason stated).
    runtime_dataset = edition.runtime_dataset if edition.runtime_dataset in _datasets(base) else None
    base_runtime, _ = scored_runtimes(base, base, runtime_dataset)
    if base_runtime is None or base_runtime <= 0:
        raise ScoringError(f"baseline '{base_name}' has no measured runtime in {_source(base)}; "
                           "run the baseline on the same machine, on the same datasets, before scoring")
    base_flops, base_params = _number(base.get("flops")), _number(base.get("params"))
    for label, value in (("FLOPs", base_flops), ("params", base_params)):
        if value is None or value <= 0:
            raise ScoringError(f"baseline '{base_name}' has no measured {label} in {_source(base)}; re-run the baseline")

    all_datasets = {d for r in results for d in _datasets(r)}
    datasets = list(in_force) + sorted(all_datasets - set(in_force))
    ctx = _Context(edition, in_force, datasets, base, base_flops, base_params, flat, runtime_dataset)
    return Leaderboard(
        table=_rank([_score_row(r, ctx) for r in results], datasets),
        edition=edition,
        baseline=base_name,
        thresholds=in_force,
        datasets=datasets,
        device=device,
        harness_version=_distinct(results, "harness_version"),
        git_commit=_distinct(results, "git_commit"),
        torch_version=_distinct(results, "torch"),
        baseline_metrics={"runtime_ms": base_runtime, "params_m": base_params / 1e6, "flops_g": base_flops / 1e9},
        runtime_rule=_runtime_rule(ctx),
        source=source,
    )
