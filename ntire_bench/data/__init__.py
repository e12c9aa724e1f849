"""Evaluation data: the datasets.yaml registry, LR/HR pairs, image I/O and the MATLAB-compatible bicubic."""

from ntire_bench.data.datasets import (IMAGE_SUFFIXES, DatasetError, DatasetSpec, ImagePair, PreparedDataset,
    load_dataset_specs, prepare_datasets)
from ntire_bench.data.images import ImageError, read_image, write_image

__all__ = ["DatasetError", "DatasetSpec", "IMAGE_SUFFIXES", "ImageError", "ImagePair", "load_dataset_specs",
    "prepare_datasets", "PreparedDataset", "read_image", "write_image"]
