"""Scoring and ranking: per-metric scores against a baseline, eligibility, ranks, the leaderboard model.

Each of runtime, FLOPs and params is scored ``exp(2 * value / baseline_value)`` and the final
score is their weighted sum; lower is better and the baseline scores ``exp(2) = 7.389``.
Scores are computed in log space, so a submission hundreds of times slower than the
baseline still gets a (huge, finite-in-log) score instead of an overflow. Everything here
works on ``SubmissionResult`` records and never re-measures; docs/scoring.md has the rules.

Measured runtimes carry a 95% interval (``runtime_ms.ci_low``/``ci_high``); it is carried
through the scores (``stats.score_interval``, ``stats.final_score_interval``) to an interval
on every score, and rows whose intervals overlap are put in one tie group ("within noise").
Ranks still follow the scores alone, as the organisers rank.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import pandas as pd

from ntire_bench.util.version import __version__
from ntire_bench.scoring.checks import (check_one_convention, check_one_device, check_one_gpu_model, check_same_measurement,
                                        check_unique, find_baseline)
from ntire_bench.scoring.editions import (SCORED_METRICS, Edition, EditionError, load_edition, resolve_thresholds, threshold_misses)
from ntire_bench.results.records import FAILED, OK, RUNNING, SubmissionResult
from ntire_bench.scoring.runtime_rule import (RuntimeRule, ScoringError, dataset_runtimes, interval_method, runtime_rule, scored_runtime_intervals, scored_runtimes)
from ntire_bench.stats.intervals import Interval
from ntire_bench.stats.scores import ScoreInterval, final_score_interval, score_interval, tie_groups
from ntire_bench.stats.logspace import exp_or_inf, weighted_log_sum_exp

# Uncertainty columns (docs/scoring.md, "Score intervals and ties within noise"); empty where a
# row has no runtime interval (published figures, results from before intervals were recorded).
BOUND_COLUMNS = (
    "score_low", "score_high",  # the final score's interval, the baseline's own timing noise included
    "score_log10_low", "score_log10_high",  # log10 of those bounds, finite where a bound overflows
    "score_rel_low", "score_rel_high",  # the same with the baseline's runtime held fixed: what ties compare
    "score_runtime_low", "score_runtime_high",  # the runtime score's interval, baseline noise included
    "runtime_ms_low", "runtime_ms_high",  # the scored runtime's interval
    "baseline_runtime_ms_low", "baseline_runtime_ms_high",  # the baseline runtime's interval
)
TIE_COLUMNS = (
    "tie_group", "within_noise",  # main track: group of overlapping ranked rows (1, 2, ...), and size > 1
    "tie_group_runtime", "within_noise_runtime",  # the same on the runtime sub-track
)
INTERVAL_COLUMNS = BOUND_COLUMNS + TIE_COLUMNS
# leaderboard.csv columns, in order; one ``psnr_<dataset>`` column per dataset follows.
LEADERBOARD_COLUMNS = (
    "rank", "submission", "eligible", "reason", "flags",
    "score", "score_runtime", "score_flops", "score_params",
    "rank_runtime", "rank_flops", "rank_params",
    "runtime_ms", "params_m", "flops_g",
    "score_log10", "baseline_runtime_ms",
    *INTERVAL_COLUMNS,
)
PSNR_PREFIX = "psnr_"
# Scores equal to this many decimals (of their log) share a rank: a weighted mean of the
# same runtimes summed in another order must not break a tie.
TIE_DECIMALS = 10
_LN10 = math.log(10.0)
_INELIGIBLE_ORDER = {OK: 0, "reference": 1, "no_weights": 2, RUNNING: 3, FAILED: 4}


# --------------------------------------------------------------------------- scores


def metric_score_ln(value: float, baseline_value: float) -> float:
    """``ln`` of the metric score ``exp(2 * value / baseline_value)``."""
    return 2.0 * value / baseline_value


def final_score_ln(score_lns: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``ln`` of the weighted sum of the per-metric scores, computed without overflow."""
    keys = [k for k in SCORED_METRICS if weights[k] > 0]
    if any(math.isnan(score_lns[k]) for k in keys):
        return math.nan
    if max(score_lns[k] for k in keys) < 700.0:  # the plain sum, exactly as the organisers compute it
        return math.log(sum(weights[k] * math.exp(score_lns[k]) for k in keys))
    return weighted_log_sum_exp([score_lns[k] for k in keys], [weights[k] for k in keys])


def final_score(score_lns: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted sum of the per-metric scores (inf past float range; see ``final_score_ln``)."""
    keys = [k for k in SCORED_METRICS if weights[k] > 0]
    if any(math.isnan(score_lns[k]) for k in keys):
        return math.nan
    if max(score_lns[k] for k in keys) < 700.0:
        return sum(weights[k] * math.exp(score_lns[k]) for k in keys)
    return exp_or_inf(final_score_ln(score_lns, weights))


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
    intervals: dict[str, Any] | None = None  # how intervals were made (interval_method); None: no row has one
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
            "intervals": dict(self.intervals) if self.intervals else None,
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


def _exact_score(ln_value: float) -> ScoreInterval:
    """A score known exactly (FLOPs and params are counted, not timed), as a zero-width interval."""
    score = exp_or_inf(ln_value)
    return ScoreInterval(score, score, score, ln_value, ln_value, ln_value)


def _row_intervals(is_baseline: bool, runtime: float | None, runtime_interval: Interval | None,
                   base_runtime: float | None, base_interval: Interval | None, lns: Mapping[str, float],
                   weights: Mapping[str, float]) -> dict[str, Any]:
    """A row's interval columns, and the log bounds its tie groups compare (``_tie_*``).

    Displayed intervals include the baseline's runtime interval; the tie bounds hold the
    baseline's runtime at its measured value (its noise shifts every row together). The
    baseline's own score is exp(2) whatever its runtime, so its displayed intervals are
    that point, while its tie bounds carry its own timing noise like any other row's.
    """
    nan = math.nan
    out: dict[str, Any] = dict.fromkeys(BOUND_COLUMNS, nan)
    out.update(_tie_low=nan, _tie_high=nan, _tie_runtime_low=nan, _tie_runtime_high=nan)
    if runtime_interval is not None:
        out["runtime_ms_low"], out["runtime_ms_high"] = runtime_interval.low, runtime_interval.high
    if base_interval is not None:
        out["baseline_runtime_ms_low"], out["baseline_runtime_ms_high"] = base_interval.low, base_interval.high
    if runtime_interval is None or runtime is None or not base_runtime:
        return out
    relative = score_interval(runtime, runtime_interval, base_runtime, None)
    shown = _exact_score(lns["runtime"]) if is_baseline else score_interval(runtime, runtime_interval, base_runtime,
                                                                           base_interval)
    out["score_runtime_low"], out["score_runtime_high"] = shown.low, shown.high
    out["_tie_runtime_low"], out["_tie_runtime_high"] = relative.log_low, relative.log_high
    if any(math.isnan(lns[k]) for k in ("flops", "params")):
        return out
    exact = {k: _exact_score(lns[k]) for k in ("flops", "params")}
    final_shown = final_score_interval({"runtime": shown, **exact}, weights)
    final_relative = final_score_interval({"runtime": relative, **exact}, weights)
    out["score_low"], out["score_high"] = final_shown.low, final_shown.high
    out["score_log10_low"], out["score_log10_high"] = final_shown.log_low / _LN10, final_shown.log_high / _LN10
    out["score_rel_low"], out["score_rel_high"] = final_relative.low, final_relative.high
    out["_tie_low"], out["_tie_high"] = final_relative.log_low, final_relative.log_high
    return out


def _hold_point(row: dict[str, Any], point: str, low: str, high: str) -> None:
    """Widen ``[low, high]`` by float rounding to hold ``point`` (two summation orders of one score)."""
    if not math.isnan(row[low]) and not math.isnan(row[point]):
        row[low], row[high] = min(row[low], row[point]), max(row[high], row[point])


def scored_complexity(result: SubmissionResult, edition: Edition) -> tuple[int | None, int | None]:
    """(FLOPs, params) as the edition scores them: the official rule's, or the audited figures."""
    complexity = result.complexity
    if complexity is None:
        return None, None
    audited = complexity.audited
    if edition.scored_complexity == "audited" and audited is not None:
        return (audited.flops if audited.flops is not None else complexity.flops,
                audited.params if audited.params is not None else complexity.params)
    return complexity.flops, complexity.params


def result_flags(result: SubmissionResult, edition: Edition) -> list[str]:
    """What a reader must know about how a row's figures were obtained (one line each)."""
    flags = []
    if result.nondeterministic:
        flags.append(f"its output varies by up to {result.output_spread} grey levels between two passes over the "
                     "same image (timing and complexity verified to that tolerance)")
    complexity = result.complexity
    if complexity is not None:
        if complexity.counted_by == "submission":
            flags.append(f"complexity counted in the submission's own process ({complexity.fallback or 'no graph'})")
        if complexity.audited is not None and complexity.audited.notes:
            scored = "audited" if edition.scored_complexity == "audited" else "official"
            flags += [f"{note} (the {scored} figure is scored)" for note in complexity.audited.notes]
    return flags


def _score_row(result: SubmissionResult, ctx: _Context) -> dict[str, Any]:
    """One leaderboard row (ranks excepted) for ``result``."""
    runtime, base_runtime = scored_runtimes(result, ctx.baseline, ctx.rule)
    runtime_interval, base_interval = scored_runtime_intervals(result, ctx.baseline, ctx.rule)
    flops, params = scored_complexity(result, ctx.edition)
    lns = {
        "runtime": metric_score_ln(runtime, base_runtime) if runtime is not None and base_runtime else math.nan,
        "flops": metric_score_ln(flops, ctx.flops) if flops is not None else math.nan,
        "params": metric_score_ln(params, ctx.params) if params is not None else math.nan,
    }
    reason = result.unranked_reason()
    if reason is None:
        misses = threshold_misses(result, ctx.thresholds)
        problems = [m.reason for m in misses]
        if result.nondeterministic and ctx.edition.nondeterminism == "fail":
            problems.append(f"non-deterministic output (up to {result.output_spread} grey levels between two passes); "
                            f"the {ctx.edition.name} edition does not rank it")
        if runtime is None and ctx.rule.kind == "datasets":
            reported = {m.dataset for m in misses if m.psnr is None}
            lacking = [d for d in ctx.rule.datasets if d not in dataset_runtimes(result) and d not in reported]
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
        "flags": "; ".join(result_flags(result, ctx.edition)),
        "score": final_score(lns, ctx.edition.weights),
        "score_runtime": exp_or_inf(lns["runtime"]) if not math.isnan(lns["runtime"]) else math.nan,
        "score_flops": exp_or_inf(lns["flops"]) if not math.isnan(lns["flops"]) else math.nan,
        "score_params": exp_or_inf(lns["params"]) if not math.isnan(lns["params"]) else math.nan,
        "runtime_ms": runtime if runtime is not None else math.nan,
        "params_m": params / 1e6 if params is not None else math.nan,
        "flops_g": flops / 1e9 if flops is not None else math.nan,
        "score_log10": total_ln / _LN10,
        "baseline_runtime_ms": base_runtime if base_runtime is not None else math.nan,
        "_order": _order(result),
        "_activations": (result.complexity.activations if result.complexity and result.complexity.activations is not None
                         else math.nan),
        "_memory": max((d.peak_memory_mb for d in result.datasets.values() if d.peak_memory_mb is not None),
                       default=math.nan),
        **{f"_ln_{k}": v for k, v in lns.items()},
        **_row_intervals(result is ctx.baseline, runtime, runtime_interval, base_runtime, base_interval, lns,
                         ctx.edition.weights),
    }
    for point, low, high in (("score", "score_low", "score_high"), ("score", "score_rel_low", "score_rel_high"),
                             ("score_log10", "score_log10_low", "score_log10_high"),
                             ("score_runtime", "score_runtime_low", "score_runtime_high")):
        _hold_point(row, point, low, high)
    for dataset in ctx.datasets:
        record = result.datasets.get(dataset)
        psnr = record.psnr if record is not None else None
        row[PSNR_PREFIX + dataset] = psnr if psnr is not None else math.nan
    return row


def _rank(rows: list[dict[str, Any]], datasets: list[str], rank_sums: Mapping[str, tuple[str, ...]]
          ) -> pd.DataFrame:
    """Rank the eligible rows on each track and order the table: ranked rows first, then the rest."""
    table = pd.DataFrame(rows)
    eligible = table["eligible"]
    # Rank on logs: monotone in the score, and finite where the score itself overflows.
    for column, by in (("rank", "score_log10"), ("rank_runtime", "_ln_runtime"),
                       ("rank_flops", "_ln_flops"), ("rank_params", "_ln_params"),
                       ("_rank_activations", "_activations"), ("_rank_memory", "_memory")):
        ranks = table.loc[eligible, by].round(TIE_DECIMALS).rank(method="min")
        table[column] = pd.Series(ranks, index=table.index).astype("Int64")
    sums = list(rank_sums)
    for track, metrics in rank_sums.items():  # the NTIRE 2022/2023 sub-tracks: the rank of a sum of ranks
        columns = [f"rank_{m}" if m in ("runtime", "flops", "params") else f"_rank_{m}" for m in metrics]
        total = table.loc[eligible, columns].astype("float").sum(axis=1, skipna=False)
        table[f"rank_{track}"] = pd.Series(total.rank(method="min"), index=table.index).astype("Int64")
    table["_ineligible"] = ~eligible
    table = table.sort_values(["_ineligible", "rank", "_order", "score_log10", "submission"],
                              na_position="last", kind="stable").reset_index(drop=True)
    _mark_ties(table, "rank", "_tie_low", "_tie_high", "tie_group", "within_noise")
    _mark_ties(table, "rank_runtime", "_tie_runtime_low", "_tie_runtime_high", "tie_group_runtime",
               "within_noise_runtime")
    return table[list(LEADERBOARD_COLUMNS) + [f"rank_{t}" for t in sums] + [PSNR_PREFIX + d for d in datasets]]


def _mark_ties(table: pd.DataFrame, rank: str, low: str, high: str, group: str, flag: str) -> None:
    """Tie groups of one track: ranked rows with an interval, numbered 1, 2, ... in that track's rank order.

    Rows that are not ranked, or have no interval, get no group and are never flagged.
    """
    table[group] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    table[flag] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    assessed = table[table["eligible"] & table[low].notna() & table[high].notna()]
    assessed = assessed.sort_values(rank, kind="stable")
    groups = tie_groups([Interval(lo, hi) for lo, hi in zip(assessed[low], assessed[high])])
    for index, tie in zip(assessed.index, groups):
        table.loc[index, group] = tie.group + 1
        table.loc[index, flag] = tie.within_noise


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
        in_force = resolve_thresholds(results, edition, thresholds, baseline)
    except EditionError as exc:
        raise ScoringError(str(exc)) from None
    results = list(results)
    if not results:
        raise ScoringError("no results to score; run `ntire-bench run` first or pass --results DIR")
    check_unique(results)
    check_one_gpu_model(results)
    device = check_one_device(results)
    check_same_measurement(results)
    check_one_convention(results, edition)
    base = find_baseline(results, baseline or edition.baseline)
    if base.status in (FAILED, RUNNING):
        raise ScoringError(f"baseline '{base.submission}' cannot normalise the scores: {base.unranked_reason()} "
                           f"({base.label}); fix and re-run the baseline before scoring")
    rule = runtime_rule(edition, base)
    base_runtime, _ = scored_runtimes(base, base, rule)
    base_interval, _ = scored_runtime_intervals(base, base, rule)
    if base_runtime is None or base_runtime <= 0:
        raise ScoringError(f"baseline '{base.submission}' has no measured runtime in {base.label}; "
                           "run the baseline on the same machine, on the same datasets, before scoring")
    base_flops, base_params = scored_complexity(base, edition)
    for label, value in (("FLOPs", base_flops), ("params", base_params)):
        if value is None or value <= 0:
            raise ScoringError(f"baseline '{base.submission}' has no measured {label} in {base.label}; re-run the baseline")
    all_datasets = {d for r in results for d in r.datasets}
    datasets = list(in_force) + sorted(all_datasets - set(in_force))
    ctx = _Context(edition, in_force, datasets, base, float(base_flops), float(base_params), rule)
    rows = [_score_row(r, ctx) for r in results]
    table = _rank(rows, datasets, edition.rank_sums)
    ranked_bases = {round(v, 9) for v in table.loc[table["eligible"], "baseline_runtime_ms"] if not math.isnan(v)}
    notes = []
    if len(ranked_bases) > 1:
        notes.append("the baseline runtime differs by row (each row is compared with the baseline on the datasets "
                     "both have): see the baseline_runtime_ms column")
    with_intervals = bool(table["runtime_ms_low"].notna().any())
    if with_intervals and base_interval is None:
        notes.append(f"the baseline '{base.submission}' records no runtime interval: score intervals leave its "
                     "timing noise out")
    for metric, label in (("memory", "GPU memory (it is measured on CUDA only)"), ("activations", "activations")):
        tracks = [t for t, metrics in edition.rank_sums.items() if metric in metrics]
        if tracks and all(math.isnan(row[f"_{metric}"]) for row in rows if row["eligible"]):
            notes.append(f"no ranked row has {label}: the {', '.join(tracks)} sub-track ranks are empty")
    uniform_base = len(ranked_bases) <= 1
    envs = [r.environment for r in results]
    return Leaderboard(
        table=table, edition=edition, baseline=base.submission, thresholds=in_force, datasets=datasets,
        device=device,
        harness_version=_distinct([e.harness_version for e in envs]),
        git_commit=_distinct([e.git_commit for e in envs]),
        torch_version=_distinct([e.torch for e in envs]),
        baseline_metrics={"runtime_ms": base_runtime if uniform_base else None,
                          "params_m": base_params / 1e6, "flops_g": base_flops / 1e9,
                          "runtime_ms_low": base_interval.low if uniform_base and base_interval else None,
                          "runtime_ms_high": base_interval.high if uniform_base and base_interval else None},
        runtime_rule=rule.describe(), source=source, notes=notes,
        intervals=interval_method(rule) if with_intervals else None,
    )
