"""The ``metadata`` file Codabench's compute worker leaves in a step's output: did the submission's own command run?

After the prediction step the worker writes ``<output>/metadata`` (compute_worker/compute_worker.py,
``push_output``): YAML with ``exitCode``, the exit status of the submission's own ``command``,
and ``ingestionExitCode``. ``exitCode`` is null unless the submission's ``metadata`` held a
command, which the worker then runs in a container of its own, beside the ingestion, with the
GPU and write access to the same output folder: it could rewrite the measured results or load
the GPU while the ingestion times the baseline. The worker refuses an output that already holds
a ``metadata`` file, so a submission cannot forge this one. In the scoring step it is
``/app/input/res/metadata``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from ntire_bench.uploads.intake import CODABENCH_METADATA_FILE
from ntire_bench.util.text import one_line


class WorkerMetadataError(ValueError):
    """The worker's metadata file exists but cannot be read; one line."""


def submission_exit_code(output: Path) -> int | str | None:
    """The exit status of the submission's own command that the worker recorded in ``output``; None if none ran.

    None too when there is no metadata file (the output did not come from a Codabench worker,
    e.g. a local run). Raises ``WorkerMetadataError`` for a file that is not the worker's YAML.
    """
    path = Path(output) / CODABENCH_METADATA_FILE
    if not path.is_file():
        return None
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WorkerMetadataError(f"{path}: the worker's metadata file is unreadable "
                                  f"({one_line(exc, with_type=False)})") from None
    if not isinstance(record, Mapping) or "exitCode" not in record:
        raise WorkerMetadataError(f"{path}: not the worker's metadata file (no exitCode)")
    return record["exitCode"]
