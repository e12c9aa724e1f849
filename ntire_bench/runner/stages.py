"""Where a run's wall time goes: seconds per stage, by the parent's clock, for every result (``stages``).

- ``process``: starting workers (interpreter, sandbox, the harness's and torch's imports) and closing them;
- ``load``: importing the team's code, building the model, loading its weights (the worker's clock);
- ``complexity``: the worker's own count and graph export, and counting the graph in a fresh worker;
- ``quality``: the quality passes (the SR images delivered), the determinism pass, moving images;
- ``warmup``: untimed warm-up passes; ``timed``: the timed samples themselves;
- ``audit``: what timing costs beyond the samples (inputs, kept outputs, the challenge and its checks);
- ``metrics``: what the run waited for of the PSNR/SSIM the parent computes on the delivered images (the
  rest overlaps the worker's next quality pass and warm-up);
- ``verification``: recomputing timed repeats in a fresh worker.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Mapping

STAGES = ("process", "load", "complexity", "quality", "warmup", "timed", "audit", "metrics", "verification")


class StageTimes:
    """Seconds per stage (``STAGES``), accumulated."""

    def __init__(self, seconds: Mapping[str, float] | None = None) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        for stage, value in (seconds or {}).items():
            self.add(stage, value)

    def add(self, stage: str, seconds: float) -> None:
        if stage not in self.seconds:
            raise KeyError(f"internal: unknown stage {stage!r} (one of {', '.join(STAGES)})")
        self.seconds[stage] += max(0.0, float(seconds))

    def move(self, source: str, target: str, seconds: float) -> None:
        """Count ``seconds`` already added to ``source`` under ``target`` (a request that spans two stages)."""
        moved = min(max(0.0, float(seconds)), self.seconds[source])
        self.seconds[source] -= moved
        self.add(target, moved)

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to ``stage``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def merge(self, other: "StageTimes | Mapping[str, float]") -> None:
        for stage, value in (other.seconds if isinstance(other, StageTimes) else other).items():
            self.add(stage, value)

    def to_dict(self) -> dict[str, float]:
        return {stage: round(value, 6) for stage, value in self.seconds.items()}  # µs: a tiny model's samples
