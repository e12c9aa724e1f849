"""The parent's checks on a worker's timing claims (docs/isolation.md, "Timings").

What a worker reports is a claim. For every timed block the parent checks:

1. **Its own clock.** The samples cannot add up to more than the wall time the parent saw
   around the request, nor to much less: ``claimed >= (1 - SLACK_FRACTION) * observed -
   slack_ms(n)``. A worker that slows its clocks, or does the real work outside the timed
   region, fails this. A block that fails is re-timed up to ``RETRIES`` times (an honest
   block can be unlucky once on a busy machine; a cheat fails every time).
2. **Inputs it could not predict.** Repeat k's input is the LR image plus a ±1-level noise
   pattern at an offset the parent draws only when it sends the request, so nothing can be
   computed ahead.
3. **Outputs checked after the fact.** The ``time`` request says nothing about what will be
   checked. Only after it has answered does the parent draw ``PROBES`` output positions and
   ``challenge`` the worker for every repeat's output there, from the outputs it kept. The answer
   must come within ``challenge_limit_ms`` (indexing kept tensors takes well under a millisecond;
   computing the pixels late would show), outputs that did not change when the input did (a
   memoized forward) fail, and a model that computed only part of each output survives only if
   every probe of every repeat fell in that part (docs/isolation.md gives the odds).
4. **The delivered image.** The quality pass's output at the probes must match the uint8 SR
   image the worker wrote.
5. **A fresh process.** After the run, a new worker that has never seen the timed inputs
   recomputes a few timed repeats as ordinary images; their outputs must equal what the timed
   worker reported for them (runner/verify.py).

Any failure is ``timing not credible: ...`` and the submission is never ranked.
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np

from ntire_bench.worker.protocol import Reply, WorkerFailure, finite_numbers
from ntire_bench.results.records import MAX_ALLOWED_SPREAD, ROUNDING_LEVELS, TimingAudit
from ntire_bench.util.text import one_line

# The samples may miss this fraction of the parent's wall time (input preparation, output
# probes, Python between repeats, pipe round trip), plus ``slack_ms``.
SLACK_FRACTION = 0.05
RETRIES = 2
PROBES = 128
NOISE_LEVELS = 1  # the timed inputs differ from the image by at most this many grey levels
# A repeat whose output moved at fewer than this fraction of the probes did not respond to its input.
RESPONSE_FRACTION = 0.25
# More than this fraction of unresponsive repeats in a dataset is a memoized forward.
UNRESPONSIVE_LIMIT = 0.10
# The fresh process must reproduce the timed outputs within this fraction of white.
VERIFY_TOLERANCE = 5e-5
# A challenge reads PROBES values from each kept output: this is ample for that, far short of a forward pass.
CHALLENGE_SLACK_MS = 25.0
CHALLENGE_MS_PER_REPEAT = 0.5
# An honest challenge's own round trip (a pipe each way, a small JSON reply), not counted as work.
CHALLENGE_ROUND_TRIP_MS = 4.0


def challenge_limit_ms(repeats: int) -> float:
    """How long the worker may take to answer a challenge about ``repeats`` kept outputs (parent's clock)."""
    return CHALLENGE_SLACK_MS + CHALLENGE_MS_PER_REPEAT * repeats


class NotCredible(WorkerFailure):
    """A timing claim failed a check; the message starts with 'timing not credible:'."""

    def __init__(self, reason: str):
        super().__init__(f"timing not credible: {reason}")


def slack_ms(repeats: int, numel: int) -> float:
    """Absolute wall time a timed block may spend outside its samples (ms), by repeats and input size."""
    return 3.0 + repeats * (0.15 + 2.0 * numel / 1e6)


def noise_buffer(numel_max: int, rng: np.random.Generator) -> np.ndarray:
    """The dataset's noise pool: int8 values in {-1, 0, 1}, long enough for any offset of any image."""
    return rng.integers(-NOISE_LEVELS, NOISE_LEVELS + 1, size=2 * numel_max + 1, dtype=np.int8)


def perturbed_lr(lr: np.ndarray, noise: np.ndarray, offset: int) -> np.ndarray:
    """Repeat input as a uint8 HxWx3 image: the LR plus the noise at ``offset`` (as the worker builds it)."""
    height, width, _ = lr.shape
    patch = noise[offset: offset + 3 * height * width].reshape(3, height, width).transpose(1, 2, 0)
    return np.clip(lr.astype(np.int16) + patch, 0, 255).astype(np.uint8)


def probe_pool(sr: np.ndarray, count: int = PROBES) -> np.ndarray:
    """Where probes may fall on the SR (3xHxW uint8): the unsaturated positions, else all. Worked out before the
    timed block (it says nothing about which will be drawn), so that drawing them after it takes no time."""
    unsaturated = np.argwhere((sr > 1) & (sr < 254))
    return unsaturated if len(unsaturated) >= count else np.argwhere(np.ones_like(sr, dtype=bool))


def choose_probes(sr: np.ndarray, rng: np.random.Generator, count: int = PROBES,
                  pool: np.ndarray | None = None) -> list[list[int]]:
    """``[channel, row, col]`` positions of the SR (3xHxW uint8) where it is not saturated, at random."""
    pool = probe_pool(sr, count) if pool is None else pool
    picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return pool[np.sort(picks)].tolist()


@dataclass
class TimedBlock:
    """One image's timed repeats as the parent sent and received them."""

    offsets: list[int]  # per repeat, warm-up repeats first
    probes: list[list[int]]
    samples: list[float]  # the sampled repeats' durations (ms), after the warm-up ones
    outputs: list[list[float]]  # per repeat, the output at ``probes``
    reference: list[float]
    stop_reason: str
    num_threads: int = 0  # torch's thread count in the worker after the block (a claim, for a note only)
    warmup_ms: list[float] = field(default_factory=list)  # adaptive: the first repeats, timed and checked as warm-up


@dataclass
class DatasetAudit:
    """Accumulates the checks over one dataset's timed blocks (one per image and pass)."""

    data_range: float
    record: TimingAudit = field(default_factory=TimingAudit)
    repeats: int = 0
    unresponsive: int = 0

    def check_block(self, timed: Reply, observed_ms: float, offsets: list[int], probes: list[list[int]],
                    answer: Reply, answer_ms: float, sr: np.ndarray | None, numel: int, gap_ms: float = 0.0,
                    max_leading: int = 0) -> TimedBlock:
        """Validate a ``time`` reply and the ``challenge`` answered after it; raise NotCredible (clock, late or
        wrong answers) or WorkerFailure (malformed). ``gap_ms``: the parent's time between the two (the worker's
        to use, so counted in the window); ``max_leading``: the most warm-up repeats the block may hold."""
        if timed["clocks_replaced"]:
            raise NotCredible(f"the submission replaced the clocks the harness reads ({timed['clocks_replaced']})")
        samples = finite_numbers(timed["samples"], "timing samples", minimum=0.0)
        if not samples or len(samples) > len(offsets):
            raise WorkerFailure(f"the worker reported {len(samples)} samples for a block of at most {len(offsets)}")
        leading = timed["leading"]
        if not 0 <= leading <= max_leading or leading >= len(samples):
            raise WorkerFailure(f"the worker reported {leading} warm-up repeats in a block of {len(samples)} "
                                f"(at most {max_leading} here)")
        outputs = answer["outputs"]
        if not isinstance(outputs, list) or len(outputs) != len(samples):
            raise WorkerFailure(f"the worker answered for {len(outputs) if isinstance(outputs, list) else '?'} "
                                f"kept outputs of a block of {len(samples)} repeats")
        outputs = [finite_numbers(row, "output probes") for row in outputs]
        reference = finite_numbers(answer["reference"], "reference probes")
        if any(len(row) != len(probes) for row in outputs) or len(reference) != len(probes):
            raise WorkerFailure("the worker's output probes do not match the probes asked for")
        claimed = math.fsum(samples)
        self.record.requests += 1
        self.record.claimed_ms += claimed
        self.record.observed_ms += observed_ms
        ratio = claimed / observed_ms if observed_ms > 0 else 1.0
        self.record.min_ratio = ratio if self.record.min_ratio is None else min(self.record.min_ratio, ratio)
        self.record.max_challenge_ms = max(self.record.max_challenge_ms or 0.0, answer_ms)
        if claimed > observed_ms * 1.02 + 1.0:
            raise NotCredible(f"the samples add up to {claimed:.2f} ms, more than the {observed_ms:.2f} ms the "
                              "parent's clock measured around them")
        # Work the worker did after replying (a forged early reply, outputs computed when challenged) lands in
        # the challenge's time, so the floor covers both requests.
        window = observed_ms + gap_ms + answer_ms
        floor = (1 - SLACK_FRACTION) * window - slack_ms(len(samples), numel) - CHALLENGE_ROUND_TRIP_MS
        if claimed < floor:
            raise NotCredible(f"the samples add up to {claimed:.2f} ms but the parent's clock measured "
                              f"{window:.2f} ms around {len(samples)} repeats and their challenge (clocks slowed, "
                              "or work done outside the timed region)")
        limit = challenge_limit_ms(len(samples))
        if answer_ms > limit:
            raise NotCredible(f"the worker took {answer_ms:.1f} ms to read {len(probes)} positions of the {len(samples)} "
                              f"outputs it should have kept (limit {limit:.0f} ms): outputs computed late, not kept")
        if sr is not None:
            self._check_reference(reference, probes, sr)
        return TimedBlock(offsets[: len(samples)], probes, samples[leading:], outputs, reference, timed["stop_reason"],
                          int(timed["num_threads"]), samples[:leading])

    def _check_reference(self, reference: list[float], probes: list[list[int]], sr: np.ndarray) -> None:
        delivered = np.array([int(sr[c, y, x]) for c, y, x in probes])
        reported = np.rint(np.clip(np.array(reference) * (255.0 / self.data_range), 0, 255))
        if np.abs(reported - delivered).max(initial=0) > 1:
            raise NotCredible("the quality pass's output reported at the probes does not match the SR image the "
                              "worker delivered")

    def count_responses(self, block: TimedBlock) -> None:
        """Tally repeats whose output did not move when their input did."""
        reference = np.array(block.reference)
        tolerance = 1e-6 * self.data_range
        for row in block.outputs:
            moved = np.abs(np.array(row) - reference) > tolerance
            self.repeats += 1
            self.record.probes_checked += len(row)
            if moved.mean() < RESPONSE_FRACTION:
                self.unresponsive += 1

    def finish(self) -> TimingAudit:
        """The audit record; raise NotCredible when too many repeats ignored their input."""
        if self.repeats and self.unresponsive > max(1, UNRESPONSIVE_LIMIT * self.repeats):
            raise NotCredible(f"in {self.unresponsive} of {self.repeats} timed repeats the output did not change when "
                              "the input did (a memoized or cached forward)")
        return self.record


def verify_tolerance(spread: int | None) -> float:
    """How far (fraction of white) a fresh recomputation may differ from a timed output: ``VERIFY_TOLERANCE``,
    widened, when two passes over an image differed at all, to twice the largest spread measured (grey levels; a
    third pass can land further from either, at most ``MAX_ALLOWED_SPREAD``) plus rounding; the leaderboard flags
    a row whose spread is more than rounding (its timing is verified only to that tolerance)."""
    widen = 2 * min(spread, MAX_ALLOWED_SPREAD) + ROUNDING_LEVELS if spread else 0
    return VERIFY_TOLERANCE + widen / 255


def compare_recomputed(timed: list[float], recomputed: list[float], data_range: float) -> float:
    """Largest difference (fraction of white) between timed outputs and a fresh process's recomputation."""
    a, b = np.array(timed, dtype=np.float64), np.array(recomputed, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    return float(np.abs(a - b).max(initial=0.0) / data_range)


def read_sr(path: Path, lr_shape: tuple[int, ...], scale: int) -> np.ndarray:
    """The worker's SR output, validated before any metric: a 3 x sH x sW uint8 array."""
    try:
        sr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise WorkerFailure(f"the worker's output could not be read: {one_line(exc, with_type=False)}") from None
    finally:
        path.unlink(missing_ok=True)
    expected = (3, lr_shape[0] * scale, lr_shape[1] * scale)
    if not isinstance(sr, np.ndarray) or sr.dtype != np.uint8 or sr.shape != expected:
        raise WorkerFailure(f"the worker delivered a {getattr(sr, 'dtype', type(sr).__name__)} array of shape "
                            f"{getattr(sr, 'shape', '?')}, expected uint8 {expected}")
    return sr
