"""The same measurement jobs on a Ray cluster (docs/ray.md); ``ray`` is imported only when used."""

from ntire_bench.cluster.executor import RayExecutor
from ntire_bench.cluster.node import RaySetupError, node_resources

__all__ = ["node_resources", "RayExecutor", "RaySetupError"]
