"""One-line messages: exceptions and text folded onto a line, and "did you mean" hints."""

from __future__ import annotations

import difflib
from typing import Iterable


def squash(text: object) -> str:
    """``text`` with every run of white space (newlines included) folded to one space."""
    return " ".join(str(text).split())


def one_line(exc: BaseException, with_type: bool = True) -> str:
    """An exception on a single line: ``Type: message`` (or the message alone), the type when it says nothing."""
    text = squash(exc)
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type else text


def did_you_mean(name: str, choices: Iterable[str], known: bool = False) -> str:
    """A hint for an unknown ``name``: ``did you mean 'x'?``, else (with ``known``) the choices."""
    choices = sorted(set(map(str, choices)))
    close = difflib.get_close_matches(str(name), choices, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"known: {', '.join(choices) or 'none'}" if known else ""
