"""Scoring and ranking: per-metric scores against a baseline, eligibility, ranks, the leaderboard model.

Each of runtime, FLOPs and params is scored ``exp(2 * value / baseline_value)`` and the final
score is their weighted sum; lower is better and the baseline scores ``exp(2) = 7.389``.
Scores are computed in log space, so a submission hundreds of times slower than the
baseline still gets a (huge, finite-in-log) score instead of an overflow. Everything here
works on ``SubmissionResult`` records and never re-measures; docs/scoring.md has the rules.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import pandas as pd

from . import __version__
from .editions import SCORE_KEYS, Edition, EditionError, load_edition, resolve_thresholds, threshold_misses
from .records import FAILED, OK, RUNNING, SubmissionResult

# leaderboard.csv columns, in order; one ``psnr_<dataset>`` column per dataset follows.
LEADERBOARD_COLUMNS = (
    "rank", "submission", "eligible", "reason",
    "score", "score_runtime", "score_flops", "score_params",
    "rank_runtime", "rank_flops", "rank_params",
    "runtime_ms", "params_m", "flops_g",
    "score_log10", "baseline_runtime_ms",
)
PSNR_PREFIX = "psnr_"
# Scores equal to this many decimals (of their log) share a rank: a weighted mean of the
# same runtimes summed in another order must not break a tie.
TIE_DECIMALS = 10
_LN10 = math.log(10.0)
_INELIGIBLE_ORDER = {OK: 0, "reference": 1, "no_weights": 2, RUNNING: 3, FAILED: 4}


class ScoringError(Exception):
    """Results or an edition cannot be scored; the message is one line saying what to do."""


# --------------------------------------------------------------------------- scores


def metric_score_ln(value: float, baseline_value: float) -> float:
    """``ln`` of the metric score ``exp(2 * value / baseline_value)``."""
    return 2.0 * value / baseline_value


def from_ln(ln_value: float) -> float:
    """``exp`` of a log score, ``inf`` where a float cannot hold it (the log is kept alongside)."""
    return math.exp(ln_value) if ln_value < 709.0 else math.inf


def metric_score(value: float, baseline_value: float) -> float:
    """``exp(2 * value / baseline_value)``: 7.389 for the baseline, lower is better; inf past float range."""
    return from_ln(metric_score_ln(value, baseline_value))


def final_score_ln(score_lns: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``ln`` of the weighted sum of the per-metric scores, computed without overflow."""
    keys = [k for k in SCORE_KEYS if weights[k] > 0]
    if any(math.isnan(score_lns[k]) for k in keys):
        return math.nan
    if max(score_lns[k] for k in keys) < 700.0:  # the plain sum, exactly as the organisers compute it
        return math.log(sum(weights[k] * math.exp(score_lns[k]) for k in keys))
    terms = [math.log(weights[k]) + score_lns[k] for k in keys]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def final_score(score_lns: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted sum of the per-metric scores (inf past float range; see ``final_score_ln``)."""
    keys = [k for k in SCORE_KEYS if weights[k] > 0]
    if any(math.isnan(score_lns[k]) for k in keys):
        return math.nan
    if max(score_lns[k] for k in keys) < 700.0:
        return sum(weights[k] * math.exp(score_lns[k]) for k in keys)
    return from_ln(final_score_ln(score_lns, weights))


# ---------------------------------------------------------------------- runtime rule


@dataclass(frozen=True)
class RuntimeRule:
    """Which runtime is scored: ``given`` (a table's own figure), ``datasets`` (the unweighted mean of
    the named datasets, the organisers' Ave.) or ``shared`` (image-weighted mean over shared datasets)."""

    kind: str
    datasets: tuple[str, ...] = ()
    fallback_from: tuple[str, ...] = ()  # the edition's datasets, when the baseline lacks them

    def describe(self) -> str:
        if self.kind == "given":
            return "runtime_ms as given in the metrics table"
        if self.kind == "datasets":
            names = " and ".join(self.datasets)
            return f"runtime_ms.mean on {names}" if len(self.datasets) == 1 else f"mean of runtime_ms.mean on {names}"
        rule = "image-count-weighted mean of runtime_ms.mean over the datasets the submission and the baseline both have"
        if self.fallback_from:
            rule += f" (the baseline was not measured on {', '.join(self.fallback_from)}, the edition's runtime datasets)"
        return rule


def _dataset_runtimes(result: SubmissionResult) -> dict[str, tuple[float, int]]:
    """``{dataset: (runtime_ms.mean, num_images)}`` for every dataset with a measured runtime."""
    return {name: (d.runtime_ms.mean, max(d.num_images, 1)) for name, d in result.datasets.items()
            if d.runtime_ms is not None and math.isfinite(d.runtime_ms.mean)}


def scored_runtimes(result: SubmissionResult, baseline: SubmissionResult,
                    rule: RuntimeRule) -> tuple[float | None, float | None]:
    """The runtime scored for ``result`` and the baseline runtime it is divided by (ms)."""
    if rule.kind == "given":
        return result.scored_runtime_ms, baseline.scored_runtime_ms
    own, base = _dataset_runtimes(result), _dataset_runtimes(baseline)
    if rule.kind == "datasets":
        def mean_of(runtimes: dict[str, tuple[float, int]]) -> float | None:
            if not all(d in runtimes for d in rule.datasets):
                return None
            return sum(runtimes[d][0] for d in rule.datasets) / len(rule.datasets)
        return mean_of(own), mean_of(base)
    common = [d for d in own if d in base]
    if not common:
        return None, None
    total = sum(own[d][1] for d in common)
    return (sum(own[d][0] * own[d][1] for d in common) / total,
            sum(base[d][0] * own[d][1] for d in common) / total)


def runtime_rule(edition: Edition, baseline: SubmissionResult) -> RuntimeRule:
    """The edition's runtime datasets when the baseline measured them all, else the shared-datasets rule."""
    if baseline.scored_runtime_ms is not None:
        return RuntimeRule("given")
    if edition.runtime_datasets and all(d in _dataset_runtimes(baseline) for d in edition.runtime_datasets):
        return RuntimeRule("datasets", edition.runtime_datasets)
    return RuntimeRule("shared", fallback_from=edition.runtime_datasets)


# ------------------------------------------------------------------------ checks


def _find_baseline(results: list[SubmissionResult], name: str) -> SubmissionResult:
    exact = [r for r in results if r.submission == name]
    matches = exact or [r for r in results if r.submission.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    names = sorted(r.submission for r in results)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ScoringError(f"baseline '{name}' is not among the results ({', '.join(names)}); {hint}"
                       "run the baseline on the same machine or pass --baseline NAME")


def _check_unique(results: list[SubmissionResult]) -> None:
    by_name: dict[str, list[str]] = {}
    for result in results:
        by_name.setdefault(result.submission, []).append(result.label)
    for name, sources in by_name.items():
        if len(sources) > 1:
            raise ScoringError(f"submission '{name}' appears more than once ({', '.join(sources)}); "
                               "keep one results file per submission")


def _check_one_device(results: list[SubmissionResult]) -> str:
    """The one device the results were measured on; mixed devices are an error."""
    by_device: dict[str, list[str]] = {}
    for result in results:
        name = result.environment.device_name or result.environment.device
        if name:
            by_device.setdefault(name, []).append(result.label)
    if len(by_device) > 1:
        parts = "; ".join(f"{device}: {', '.join(sources)}" for device, sources in by_device.items())
        raise ScoringError(f"results come from different devices ({parts}); runtimes are only comparable "
                           "on one device, so score each device's results directory separately")
    return next(iter(by_device), "unknown")


def _measurement(result: SubmissionResult) -> tuple[str, str] | None:
    """What must match between ranked results: the measurement settings and the harness code."""
    if result.settings is None:
        return None  # a published table, or a record made by hand: nothing measured here
    code = result.environment.harness_fingerprint or result.environment.git_commit or "unknown"
    return json.dumps(result.settings.comparable(), sort_keys=True), code


def _check_same_measurement(results: list[SubmissionResult]) -> None:
    """Refuse to rank together results measured with different settings or harness code."""
    groups: dict[tuple[str, str], list[SubmissionResult]] = {}
    for result in results:
        key = _measurement(result)
        if key is not None and result.status != FAILED:
            groups.setdefault(key, []).append(result)
    if len(groups) < 2:
        return
    (key_a, first), (key_b, second) = list(groups.items())[:2]
    a, b = first[0], second[0]
    if key_a[1] != key_b[1]:
        what = f"harness code {key_a[1][:12]} in {a.label}, {key_b[1][:12]} in {b.label}"
    else:
        sa, sb = json.loads(key_a[0]), json.loads(key_b[0])
        diffs = [k for k in sa if sa[k] != sb.get(k)]
        what = "; ".join(f"{k} {sa[k]!r} in {a.label}, {sb.get(k)!r} in {b.label}" for k in diffs)
    raise ScoringError(f"results were measured differently ({what}); re-run them together with one "
                       "ntire-bench version and the same options, or score each directory separately")


# ---------------------------------------------------------------------- the board


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
    baseline_metrics: dict[str, float | None]
    runtime_rule: str
    source: str | None = None
    notes: list[str] = field(default_factory=list)
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
            "notes": list(self.notes),
            "source": self.source,
            "scored_with": f"ntire-bench {self.scored_with}",
            "generated_at": self.generated_at,
        }


@dataclass(frozen=True)
class _Context:
    """What every row is scored against: the edition, thresholds and the baseline's measurements."""

    edition: Edition
    thresholds: Mapping[str, float]
    datasets: list[str]
    baseline: SubmissionResult
    flops: float
    params: float
    rule: RuntimeRule


def _order(result: SubmissionResult) -> int:
    status = "reference" if result.status == OK and result.reference else result.status
    return _INELIGIBLE_ORDER.get(status, 5)


def _score_row(result: SubmissionResult, ctx: _Context) -> dict[str, Any]:
    """One leaderboard row (ranks excepted) for ``result``."""
    runtime, base_runtime = scored_runtimes(result, ctx.baseline, ctx.rule)
    complexity = result.complexity
    flops = complexity.flops if complexity is not None else None
    params = complexity.params if complexity is not None else None
    lns = {
        "runtime": metric_score_ln(runtime, base_runtime) if runtime is not None and base_runtime else math.nan,
        "flops": metric_score_ln(flops, ctx.flops) if flops is not None else math.nan,
        "params": metric_score_ln(params, ctx.params) if params is not None else math.nan,
    }
    reason = result.unranked_reason()
    if reason is None:
        misses = threshold_misses(result, ctx.thresholds)
        problems = [m.reason for m in misses]
        if runtime is None and ctx.rule.kind == "datasets":
            reported = {m.dataset for m in misses if m.psnr is None}
            lacking = [d for d in ctx.rule.datasets if d not in _dataset_runtimes(result) and d not in reported]
            if lacking:
                problems.append(f"no runtime measured on {' and '.join(lacking)}")
        elif runtime is None:
            problems.append("no runtime measured on a dataset the baseline also has")
        problems += [f"no {label} measured" for label, v in (("FLOPs", flops), ("params", params)) if v is None]
        reason = "; ".join(problems) or None
    total_ln = final_score_ln(lns, ctx.edition.weights)
    row = {
        "submission": result.submission,
        "eligible": reason is None,
        "reason": reason or "",
        "score": final_score(lns, ctx.edition.weights),
        "score_runtime": from_ln(lns["runtime"]) if not math.isnan(lns["runtime"]) else math.nan,
        "score_flops": from_ln(lns["flops"]) if not math.isnan(lns["flops"]) else math.nan,
        "score_params": from_ln(lns["params"]) if not math.isnan(lns["params"]) else math.nan,
        "runtime_ms": runtime if runtime is not None else math.nan,
        "params_m": params / 1e6 if params is not None else math.nan,
        "flops_g": flops / 1e9 if flops is not None else math.nan,
        "score_log10": total_ln / _LN10,
        "baseline_runtime_ms": base_runtime if base_runtime is not None else math.nan,
        "_order": _order(result),
        **{f"_ln_{k}": v for k, v in lns.items()},
    }
    for dataset in ctx.datasets:
        record = result.datasets.get(dataset)
        psnr = record.psnr if record is not None else None
        row[PSNR_PREFIX + dataset] = psnr if psnr is not None else math.nan
    return row


def _rank(rows: list[dict[str, Any]], datasets: list[str]) -> pd.DataFrame:
    """Rank the eligible rows on each track and order the table: ranked rows first, then the rest."""
    table = pd.DataFrame(rows)
    eligible = table["eligible"]
    # Rank on logs: monotone in the score, and finite where the score itself overflows.
    for column, by in (("rank", "score_log10"), ("rank_runtime", "_ln_runtime"),
                       ("rank_flops", "_ln_flops"), ("rank_params", "_ln_params")):
        ranks = table.loc[eligible, by].round(TIE_DECIMALS).rank(method="min")
        table[column] = pd.Series(ranks, index=table.index).astype("Int64")
    table["_ineligible"] = ~eligible
    table = table.sort_values(["_ineligible", "rank", "_order", "score_log10", "submission"],
                              na_position="last", kind="stable")
    return table[list(LEADERBOARD_COLUMNS) + [PSNR_PREFIX + d for d in datasets]].reset_index(drop=True)


def _distinct(values: list[str | None]) -> str | None:
    return ", ".join(sorted({v for v in values if v})) or None


def score_results(results: list[SubmissionResult], edition: Edition | str | os.PathLike | None = None,
                  baseline: str | None = None, thresholds: Mapping[str, float] | None = None,
                  source: str | None = None) -> Leaderboard:
    """Score and rank ``results`` under ``edition``.

    ``baseline`` overrides the edition's baseline name; ``thresholds`` adds to or overrides its
    PSNR thresholds (dataset -> dB). The baseline's own measured runtime, FLOPs and params
    normalise every score, whether or not it is itself eligible (without weights it still was
    timed and counted). Raise ScoringError when the baseline is absent, failed or unmeasured,
    or when the results mix devices, measurement settings or harness code.
    """
    try:
        edition = load_edition(edition)
        in_force = resolve_thresholds(results, edition, thresholds)
    except EditionError as exc:
        raise ScoringError(str(exc)) from None
    results = list(results)
    if not results:
        raise ScoringError("no results to score; run `ntire-bench run` first or pass --results DIR")
    _check_unique(results)
    device = _check_one_device(results)
    _check_same_measurement(results)
    base = _find_baseline(results, baseline or edition.baseline)
    if base.status in (FAILED, RUNNING):
        raise ScoringError(f"baseline '{base.submission}' cannot normalise the scores: {base.unranked_reason()} "
                           f"({base.label}); fix and re-run the baseline before scoring")
    rule = runtime_rule(edition, base)
    base_runtime, _ = scored_runtimes(base, base, rule)
    if base_runtime is None or base_runtime <= 0:
        raise ScoringError(f"baseline '{base.submission}' has no measured runtime in {base.label}; "
                           "run the baseline on the same machine, on the same datasets, before scoring")
    base_flops = base.complexity.flops if base.complexity else None
    base_params = base.complexity.params if base.complexity else None
    for label, value in (("FLOPs", base_flops), ("params", base_params)):
        if value is None or value <= 0:
            raise ScoringError(f"baseline '{base.submission}' has no measured {label} in {base.label}; re-run the baseline")
    all_datasets = {d for r in results for d in r.datasets}
    datasets = list(in_force) + sorted(all_datasets - set(in_force))
    ctx = _Context(edition, in_force, datasets, base, float(base_flops), float(base_params), rule)
    rows = [_score_row(r, ctx) for r in results]
    table = _rank(rows, datasets)
    ranked_bases = {round(v, 9) for v in table.loc[table["eligible"], "baseline_runtime_ms"] if not math.isnan(v)}
    notes = []
    if len(ranked_bases) > 1:
        notes.append("the baseline runtime differs by row (each row is compared with the baseline on the datasets "
                     "both have): see the baseline_runtime_ms column")
    envs = [r.environment for r in results]
    return Leaderboard(
        table=table, edition=edition, baseline=base.submission, thresholds=in_force, datasets=datasets,
        device=device,
        harness_version=_distinct([e.harness_version for e in envs]),
        git_commit=_distinct([e.git_commit for e in envs]),
        torch_version=_distinct([e.torch for e in envs]),
        baseline_metrics={"runtime_ms": base_runtime if len(ranked_bases) <= 1 else None,
                          "params_m": base_params / 1e6, "flops_g": base_flops / 1e9},
        runtime_rule=rule.describe(), source=source, notes=notes,
    )
