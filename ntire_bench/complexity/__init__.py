"""Model complexity as each year's official code counts it: params, FLOPs, activations, Conv2d calls.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "counting": ["count_flops", "count_params", "measure_complexity"],
})
