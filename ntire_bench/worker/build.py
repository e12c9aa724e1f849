"""From a declaration to a loaded, deployed model, inside the worker (this runs team code).

Python plugins are imported and their ``Submission`` looked up by name; NTIRE team
declarations (``*.yaml`` from ``ntire-bench import-ntire``) become a ``Submission`` built
from the team's own files in the official checkout (``ntire_team.py``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ntire_bench.worker.loading import (LoadNotes, absent_checkpoint_loads_nothing, apply_state_dict, cuda_calls_stay_on_cpu, extract_state_dict, import_entry_point, import_plugin_file, read_checkpoint, run_deploy)
from ntire_bench.plugins.declaration import PluginError, Submission


def load_declared_submission(config: dict[str, Any]) -> Submission:
    """The ``Submission`` named ``config['name']`` in ``config['source']`` (a plugin, an entry point or a YAML)."""
    source, name, kind = config["source"], config["name"], config["info"]["kind"]
    if kind == "ntire-team":
        from ntire_bench.ntire.team import submission_from_declaration

        return submission_from_declaration(Path(source))
    if source.startswith("entry-point:"):
        declared = import_entry_point(source.removeprefix("entry-point:"))
    else:
        declared = import_plugin_file(Path(source))
    for submission in declared:
        if submission.name == name:
            return submission
    raise PluginError(f"{source}: declares no submission named {name!r}")


def _probe_size(submission: Submission) -> int:
    multiple = max(1, submission.pad_to_multiple)
    return max(32, -(-32 // multiple) * multiple)


def build_model(submission: Submission, checkpoint: str | None, device: torch.device, notes: LoadNotes) -> nn.Module:
    """Build the model, load its checkpoint (when there is one), deploy it, and put it on ``device`` in eval mode."""
    # A fixed seed: a model built without weights (or with buffers drawn at random) must come out
    # the same in every process, so that a fresh worker can reproduce the timed outputs.
    torch.manual_seed(0)
    branch_loads_weights = submission.load_weights is not None and submission.checkpoint and not checkpoint
    with cuda_calls_stay_on_cpu(notes) if device.type == "cpu" else contextlib.nullcontext(), \
            absent_checkpoint_loads_nothing(submission.checkpoint, notes) if branch_loads_weights \
            else contextlib.nullcontext():
        model = submission.model()
    if not isinstance(model, nn.Module):
        raise PluginError(f"the model factory returned {type(model).__name__}, expected torch.nn.Module")
    if checkpoint:
        if submission.load_weights is not None:
            submission.load_weights(model, checkpoint)
        else:
            raw = read_checkpoint(checkpoint, submission.sha256, submission.trust_pickle, notes)
            state = extract_state_dict(raw, checkpoint, submission.state_dict_key)
            apply_state_dict(model, state, submission.strict, checkpoint, notes)
    model = model.to(device).eval()
    if submission.deploy:
        model = run_deploy(model, submission.deploy, submission.data_range, _probe_size(submission), device, notes)
        model = model.to(device).eval()
    return model

