"""What every command shares: the one-line data error, and reading the datasets a command names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import click

from ntire_bench.util.text import did_you_mean

if TYPE_CHECKING:
    from ntire_bench.data.datasets import DatasetSpec

DEFAULT_DATASETS_FILE = Path("datasets.yaml")


class DataError(click.ClickException):
    """A usage or data problem: one line on stderr, exit status 2."""

    exit_code = 2


def named_datasets(datasets_file: Path | None, names: Iterable[str]) -> tuple[dict[str, DatasetSpec], list[str]]:
    """Every dataset of the registry (``./datasets.yaml`` when none is given) and the ``names`` asked for,
    checked: an unknown name raises DataError with a "did you mean" hint. Raises DatasetError for a bad file."""
    from ntire_bench.data.datasets import load_dataset_specs  # on use: the CLI starts without OpenCV

    if datasets_file is None and DEFAULT_DATASETS_FILE.is_file():
        datasets_file = DEFAULT_DATASETS_FILE
    specs = load_dataset_specs(datasets_file)
    chosen = list(names)
    for name in chosen:
        if name not in specs:
            raise DataError(f"unknown dataset {name!r} (datasets file: {datasets_file or 'none'}); "
                            f"{did_you_mean(name, specs, known=True)}")
    return specs, chosen
