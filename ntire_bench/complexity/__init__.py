"""Model complexity as each year's official code counts it: params, FLOPs, activations, Conv2d calls."""

from ntire_bench.complexity.counting import count_flops, count_params, measure_complexity

__all__ = ["count_flops", "count_params", "measure_complexity"]
