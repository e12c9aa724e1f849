"""The same measurement jobs on a Ray cluster (docs/ray.md); ``ray`` is imported only when used.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "executor": ["RayExecutor"],
    "node": ["RaySetupError", "node_resources"],
})
