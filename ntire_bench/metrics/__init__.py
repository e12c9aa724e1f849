"""Image quality as the official NTIRE code computes it: PSNR and SSIM on RGB and Y.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "quality": ["METRIC_KEYS", "image_quality", "mean_quality", "quantize", "score_files"],
})
