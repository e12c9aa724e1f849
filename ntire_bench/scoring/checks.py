"""Which results may share one leaderboard: one baseline, unique names, one device and GPU model, one method.

Each check raises ``ScoringError`` with one line that names the results files involved and
says what to do; ``scoring.score_results`` runs them all before computing any score.
"""

from __future__ import annotations

import json
from typing import Mapping

from ntire_bench.results.records import FAILED, SubmissionResult
from ntire_bench.scoring.editions import Edition
from ntire_bench.scoring.runtime_rule import ScoringError
from ntire_bench.util.text import did_you_mean


def find_baseline(results: list[SubmissionResult], name: str) -> SubmissionResult:
    exact = [r for r in results if r.submission == name]
    matches = exact or [r for r in results if r.submission.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    names = sorted(r.submission for r in results)
    hint = did_you_mean(name, names)
    hint = f"{hint} " if hint else ""
    raise ScoringError(f"baseline '{name}' is not among the results ({', '.join(names)}); {hint}"
                       "run the baseline on the same machine or pass --baseline NAME")


def check_unique(results: list[SubmissionResult]) -> None:
    by_name: dict[str, list[str]] = {}
    for result in results:
        by_name.setdefault(result.submission, []).append(result.label)
    for name, sources in by_name.items():
        if len(sources) > 1:
            raise ScoringError(f"submission '{name}' appears more than once ({', '.join(sources)}); "
                               "keep one results file per submission")


def check_one_gpu_model(results: list[SubmissionResult]) -> None:
    """Refuse results timed on more than one GPU model: each result's GPU and, from a cluster, every job's."""
    by_model: dict[str, list[str]] = {}
    for result in results:
        models = {(result.environment.gpu or {}).get("name")}
        models |= {job.get("gpu") for job in (result.environment.executor or {}).get("jobs", [])
                   if isinstance(job, Mapping)}
        for model in sorted(m for m in models if m):
            by_model.setdefault(str(model), []).append(result.label)
    if len(by_model) > 1:
        parts = "; ".join(f"{model}: {', '.join(sources)}" for model, sources in sorted(by_model.items()))
        raise ScoringError(f"results come from different GPU models ({parts}); one leaderboard never mixes GPU "
                           "models: pin one model (docs/ray.md) or score each model's results separately")


def check_one_device(results: list[SubmissionResult]) -> str:
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


def check_same_measurement(results: list[SubmissionResult]) -> None:
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


def check_one_convention(results: list[SubmissionResult], edition: Edition) -> None:
    """Refuse results whose FLOPs follow another counter than the edition's: one leaderboard, one convention."""
    for result in results:
        complexity = result.complexity
        if complexity is not None and complexity.flops is not None and complexity.convention != edition.flop_convention:
            raise ScoringError(f"{result.label} counted FLOPs by {complexity.convention}, edition '{edition.name}' by "
                               f"{edition.flop_convention}; re-run it with --edition {edition.name} (or score with an "
                               "edition of its convention)")
