"""Timing a forward pass: the harness's own clocks, warm-up, timed repeats, adaptive sampling, summaries.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "runtime": ["TimingSettings", "summarize_dataset", "summarize_runs", "summarize_samples"],
    "adaptive": ["AdaptiveSampler", "WarmupDetector"],
})
