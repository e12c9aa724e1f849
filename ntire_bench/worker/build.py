"""From a declaration to a loaded, deployed model, inside the worker (this runs team code).

Python plugins are imported and their ``Submission`` looked up by name; NTIRE team
declarations (``*.yaml`` from ``ntire-bench import-ntire``) become a ``Submission`` built
from the team's own files in the official checkout (``ntire.team``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ntire_bench.worker.loading import (LoadNotes, apply_state_dict, cuda_calls_stay_on_cpu, extract_state_dict,
                                        import_entry_point, import_plugin_file, read_checkpoint, run_deploy)
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


class _MissingWeights(dict):
    """What ``torch.load`` of an absent checkpoint returns while an organisers' branch builds a model with
    no weights: any key gives itself back, and ``load_state_dict`` of it changes nothing. Used as a model
    (a pickled whole model), it says there is nothing to build."""

    name = "the checkpoint"

    def __getitem__(self, key: Any) -> _MissingWeights:
        return self

    def __contains__(self, key: object) -> bool:
        return True

    def __getattr__(self, attribute: str) -> Any:
        raise PluginError(f"{self.name} is absent and the team's branch takes the whole model from it "
                          "(a pickled model), so there is nothing to time; add the file to the model zoo")


@contextlib.contextmanager
def absent_checkpoint_loads_nothing(checkpoint: str, notes: LoadNotes) -> Iterator[None]:
    """Let code that loads ``checkpoint`` itself (an organisers' branch) build the model when the file is absent,
    so the submission is still timed and counted (status no_weights)."""
    name = Path(checkpoint).name
    real_load, real_apply = torch.load, nn.Module.load_state_dict

    def load(f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and Path(f).name == name and not Path(f).exists():
            marker = _MissingWeights()
            marker.name = name
            return marker
        return real_load(f, *args, **kwargs)

    def apply(self, state_dict, *args, **kwargs):
        if isinstance(state_dict, _MissingWeights):
            note = f"{name} is absent: the model keeps its initial weights"
            if note not in notes.warnings:
                notes.warnings.append(note)
            return nn.modules.module._IncompatibleKeys([], [])
        return real_apply(self, state_dict, *args, **kwargs)

    torch.load, nn.Module.load_state_dict = load, apply
    try:
        yield
    finally:
        torch.load, nn.Module.load_state_dict = real_load, real_apply


@contextlib.contextmanager
def checkpoint_found_elsewhere(declared: str, found: str, notes: LoadNotes) -> Iterator[None]:
    """Let code that loads ``declared`` itself (an organisers' branch) read ``found`` instead, when the checkout
    lacks the file and the model zoo has it (a public copy without the checkpoints, say)."""
    name = Path(declared).name
    real_load = torch.load

    def load(f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and Path(f).name == name and not Path(f).exists():
            note = f"{declared} is not in the checkout: the branch loads {found}"
            if note not in notes.warnings:
                notes.warnings.append(note)
            return real_load(found, *args, **kwargs)
        return real_load(f, *args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = real_load


def _weights_the_branch_loads(submission: Submission, checkpoint: str | None,
                              notes: LoadNotes) -> contextlib.AbstractContextManager:
    """For a model factory that loads its own weights: what its torch.load of the declared checkpoint reads."""
    declared = submission.checkpoint
    if submission.load_weights is None or not declared:
        return contextlib.nullcontext()
    if not checkpoint:
        return absent_checkpoint_loads_nothing(declared, notes)
    if not Path(declared).exists():
        return checkpoint_found_elsewhere(declared, checkpoint, notes)
    return contextlib.nullcontext()


def _probe_size(submission: Submission) -> int:
    multiple = max(1, submission.pad_to_multiple)
    return max(32, -(-32 // multiple) * multiple)


def build_model(submission: Submission, checkpoint: str | None, device: torch.device, notes: LoadNotes) -> nn.Module:
    """Build the model, load its checkpoint (when there is one), deploy it, and put it on ``device`` in eval mode."""
    # A fixed seed: a model built without weights (or with buffers drawn at random) must come out
    # the same in every process, so that a fresh worker can reproduce the timed outputs.
    torch.manual_seed(0)
    with cuda_calls_stay_on_cpu(notes) if device.type == "cpu" else contextlib.nullcontext(), \
            _weights_the_branch_loads(submission, checkpoint, notes):
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

