"""Evaluation data: the datasets.yaml registry, LR/HR pairs, image I/O and the MATLAB-compatible bicubic.

Names are imported from their modules on first use (lazy_loader), so importing one module of this
package does not import the rest."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "datasets": ["IMAGE_SUFFIXES", "DatasetError", "DatasetSpec", "ImagePair", "PreparedDataset",
        "load_dataset_specs", "prepare_datasets"],
    "images": ["ImageError", "read_image", "write_image"],
})
