"""A run: discover submissions, measure each in confined workers, check the claims, record the results.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "context": ["RunConfig", "RunContext"],
    "discovery": ["discover", "select"],
    "evaluation": ["Executor", "LocalExecutor", "evaluate_submission", "run_benchmark"],
    "bench": ["bench_submission"],
})
