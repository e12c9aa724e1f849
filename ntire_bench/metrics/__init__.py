"""Image quality as the official NTIRE code computes it: PSNR and SSIM on RGB and Y."""

from ntire_bench.metrics.quality import METRIC_KEYS, image_quality, mean_quality, quantize, score_files

__all__ = ["image_quality", "mean_quality", "METRIC_KEYS", "quantize", "score_files"]
