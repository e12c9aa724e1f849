"""Results records the tests build by hand: valid ``SubmissionResult``s with chosen figures."""

from __future__ import annotations

from pathlib import Path

from ntire_bench.results.records import (ComplexityResult, DatasetResult, Environment, RuntimeStats, Settings, SubmissionResult)
from ntire_bench.results.store import ResultsStore

V, T = "DIV2K_LSDIR_valid", "DIV2K_LSDIR_test"
DEVICE = "NVIDIA GeForce RTX 3090"
RECORDED = {V: 26.90, T: 26.99}  # what datasets.yaml records for the NTIRE sets
SETTINGS = Settings(device="cuda:0", warmup=5, repeats=20, threads=None)


def make_result(name: str, psnr: dict[str, float] | None = None, runtime: float | dict[str, float] = 10.0,
                params: float | None = 300_000, flops: float | None = 20e9, status: str = "ok",
                reference: bool = False, error: str | None = None, device: str = DEVICE,
                num_images: dict[str, int] | None = None, thresholds: dict[str, float] | None = None,
                settings: Settings | None = SETTINGS, fingerprint: str = "f" * 64,
                interval: float | None = None) -> SubmissionResult:
    """One result; ``psnr`` maps dataset -> dB, ``runtime`` is the headline (ms) per dataset or for all.

    ``interval`` gives every headline a symmetric interval of that many ms.
    """
    thresholds = RECORDED if thresholds is None else thresholds
    datasets = {}
    for dataset, value in (psnr or {}).items():
        mean = runtime[dataset] if isinstance(runtime, dict) else runtime
        datasets[dataset] = DatasetResult(
            num_images=(num_images or {}).get(dataset, 100), psnr=value, psnr_y=value + 1.4, ssim=0.80, ssim_y=0.82,
            threshold=thresholds.get(dataset),
            runtime_ms=RuntimeStats(mean=mean, median=mean, min=mean * 0.9, max=mean * 1.1, std=0.1, runs=[mean],
                                    ci_low=None if interval is None else mean - interval,
                                    ci_high=None if interval is None else mean + interval))
    complexity = None
    if params is not None or flops is not None:
        complexity = ComplexityResult(params=None if params is None else int(params),
                                      flops=None if flops is None else int(flops), activations=None, num_conv=None)
    return SubmissionResult(
        submission=name, status=status, team="test", error=error, reference=reference, data_range=1.0,
        complexity=complexity, datasets=datasets, settings=settings,
        environment=Environment(harness_version="0.1.0", harness_fingerprint=fingerprint, git_commit="abc1234",
                                torch="2.13.0", device="cuda:0", device_name=device),
    )


def rlfn(**overrides) -> SubmissionResult:
    """The baseline: 10 ms, 20 GFLOPs, 0.3 M params, above both NTIRE thresholds."""
    return make_result("rlfn", **{"psnr": {V: 26.96, T: 27.07}, **overrides})


def write_results(directory: Path, records: list[SubmissionResult]) -> Path:
    """Save each record as ``<submission>.json`` in ``directory``; return it."""
    store = ResultsStore(directory)
    for record in records:
        store.save(record)
    return directory


def load(directory: Path) -> list[SubmissionResult]:
    return ResultsStore(directory).load_all().results
