"""NTIRE team declarations at run time: what the parent may know, and the model the worker builds.

``team_info`` is pure data (the parent uses it). ``submission_from_declaration`` runs in the
worker only: it puts the checkout first on ``sys.path`` and makes it the working directory
(team code imports ``models.x`` and reads files relative to the checkout, as under the
organisers' ``test_demo.py``), then builds the team's class, or runs the organisers' own
``select_model`` branch for an ``official-branch`` declaration. Organisers' functions (``select_model``,
the ``forward`` wrappers) run with only the top-level statements they use (``ntire.slicing``), never
the whole of ``test_demo.py``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from ntire_bench.ntire.declaration import TeamDeclaration, read_declaration
from ntire_bench.ntire.slicing import load_sliced
from ntire_bench.plugins.declaration import PluginError, Submission
from ntire_bench.util.text import one_line


def team_info(declaration: TeamDeclaration) -> dict[str, Any]:
    """The ``SubmissionInfo`` fields of a declaration (the worker's Submission reports the same)."""
    return {
        "name": declaration.name, "team": declaration.team, "kind": "ntire-team",
        "checkpoint": declaration.checkpoint, "data_range": declaration.data_range,
        "requires_weights": _requires_weights(declaration),
        "description": f"NTIRE team {declaration.team_id} ({declaration.build})",
        "custom_forward": _wrapper(declaration) is not None, "strict": declaration.strict,
        "trust_pickle": declaration.trust_pickle, "state_dict_key": declaration.state_dict_key,
        "deploy": list(declaration.deploy), "code_root": declaration.checkout,
    }


def _requires_weights(declaration: TeamDeclaration) -> bool:
    return declaration.checkpoint is not None


def _wrapper(declaration: TeamDeclaration) -> tuple[str, str] | None:
    """(file, function) of the organisers' inference wrapper this team is run through, if any."""
    if declaration.forward is not None:
        return declaration.forward.file, declaration.forward.function
    if declaration.tile is not None:  # tiled inference happens in the organisers' generic forward()
        return declaration.origin.file, "forward"
    return None


def _checkout_function(checkout: Path, relative: str, function: str) -> Any:
    """``function`` of a checkout file (e.g. test_demo.py), run with only the top-level statements it needs."""
    path = (checkout / relative).resolve()
    name = f"ntire_checkout_{relative.replace('/', '_').removesuffix('.py')}_{function}"
    module = sys.modules.get(name)
    if module is None:
        try:
            module = load_sliced(path, [function], name)
        except KeyError:
            raise PluginError(f"{relative}: has no function {function}()") from None
        except (OSError, SyntaxError) as exc:
            raise PluginError(f"{path}: cannot be read ({one_line(exc)})") from None
    return getattr(module, function)


def _forward(declaration: TeamDeclaration, checkout: Path) -> Any:
    found = _wrapper(declaration)
    if found is None:
        return None
    file, function = found
    wrapper = _checkout_function(checkout, file, function)
    tile = declaration.tile

    def official_forward(model: Any, x: Any) -> Any:
        return wrapper(x, model, tile)

    official_forward.__name__ = function
    return official_forward


def _translated_factory(declaration: TeamDeclaration) -> Any:
    def build() -> Any:
        module = importlib.import_module(declaration.module)
        cls = getattr(module, declaration.class_name, None)
        if cls is None:
            raise PluginError(f"{declaration.module} has no {declaration.class_name}")
        return cls(*declaration.args, **declaration.kwargs)

    build.__name__ = declaration.class_name or "model"
    return build


def _official_branch_factory(declaration: TeamDeclaration, checkout: Path) -> Any:
    def build() -> Any:
        import torch

        select = _checkout_function(checkout, declaration.origin.file, declaration.origin.function)
        args = argparse.Namespace(model_id=declaration.team_id, data_dir="", save_dir="", include_test=False,
                                  ssim=False)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        result = select(args, device)
        return result[0] if isinstance(result, tuple) else result

    build.__name__ = f"{declaration.origin.function}_{declaration.team_id}"
    return build


def submission_from_declaration(path: Path) -> Submission:
    """The ``Submission`` a declaration describes (worker only: this imports the team's code)."""
    declaration = read_declaration(path)
    if declaration.error:
        raise PluginError(f"{Path(path).name}: {declaration.error}")
    if declaration.data_range is None:
        raise PluginError(f"{Path(path).name}: data_range is not set; write 1.0 or 255.0 in the declaration")
    checkout = Path(declaration.checkout)
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    os.chdir(checkout)
    official = declaration.build == "official-branch"
    return Submission(
        name=declaration.name, team=declaration.team,
        model=_official_branch_factory(declaration, checkout) if official else _translated_factory(declaration),
        checkpoint=declaration.checkpoint, data_range=float(declaration.data_range),
        forward=_forward(declaration, checkout), requires_weights=_requires_weights(declaration),
        description=f"NTIRE team {declaration.team_id} ({declaration.build})",
        state_dict_key=tuple(declaration.state_dict_key) if isinstance(declaration.state_dict_key, list)
        else declaration.state_dict_key,
        strict=declaration.strict, trust_pickle=declaration.trust_pickle,
        deploy=tuple(declaration.deploy) or None, load_weights=_weights_loader(declaration, official),
    )


def _weights_loader(declaration: TeamDeclaration, official: bool) -> Any:
    """None for the harness's own checkpoint rules; the branch's (nothing to do) or the team's method otherwise."""
    if official:
        def loaded_by_the_branch(model: Any, checkpoint: str) -> None:
            return None

        return loaded_by_the_branch
    if declaration.loader.startswith("method:"):
        method = declaration.loader.removeprefix("method:")

        def team_loader(model: Any, checkpoint: str) -> None:
            getattr(model, method)(checkpoint)

        return team_loader
    return None

