"""Model complexity as each year's official code counts it: params, FLOPs, activations, Conv2d calls."""

from ntire_bench.complexity.counting import Complexity, count_flops, count_params, measure_complexity

__all__ = ["Complexity", "count_flops", "count_params", "measure_complexity"]
