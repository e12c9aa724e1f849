"""A participant's factsheet table: the figures every NTIRE ESR factsheet asks for, from one results record.

PSNR on the validation and test sets, Params [M], FLOPs [G], GPU memory [M], Activations [M]
and runtime [ms], as Markdown and as LaTeX, with the conventions and the device that produced
them written under the table. Nothing is re-measured: every figure comes from the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from ntire_bench.results.records import OK, DatasetResult, SubmissionResult

VALID_DATASET = "DIV2K_LSDIR_valid"
TEST_DATASET = "DIV2K_LSDIR_test"
DEFAULT_CONVENTION = "fvcore"
FORMATS = ("markdown", "latex")

# (header, decimals) of each column, in the factsheet's order.
COLUMNS = (
    ("PSNR [val]", 2),
    ("PSNR [test]", 2),
    ("Params [M]", 4),
    ("FLOPs [G]", 4),
    ("GPU Mem. [M]", 2),
    ("Activations [M]", 2),
    ("Runtime [ms]", 2),
)
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


class FactsheetError(ValueError):
    """A record lacks a figure the factsheet needs; the message is one line and says what to run."""


@dataclass(frozen=True)
class Factsheet:
    """The factsheet's figures (None: not measured) and the lines that say how they were obtained."""

    values: tuple[float | None, ...]  # in the order of COLUMNS
    notes: tuple[str, ...]


def _dataset(result: SubmissionResult, name: str, role: str) -> DatasetResult:
    dataset = result.datasets.get(name)
    if dataset is None:
        measured = ", ".join(sorted(result.datasets)) or "none"
        raise FactsheetError(f"{result.label}: no {name} result (the {role} set): run it on that set, or pass "
                             f"--{role} NAME (measured: {measured})")
    if dataset.psnr is None:
        raise FactsheetError(f"{result.label}: {name} has no PSNR (measured without ground truth): "
                             "run it with the set's HR images")
    if dataset.runtime_ms is None:
        raise FactsheetError(f"{result.label}: {name} has no runtime: re-run it on that set")
    return dataset


# How each FLOP counter reads, for the notes under the table; both count one multiply-add as one FLOP.
CONVENTION_TEXT = {
    "fvcore": "fvcore (1 multiply-add = 1 FLOP)",
    "ntire2023-hooks": "the NTIRE 2023 hooks of utils/model_summary.py (1 multiply-add = 1 FLOP)",
}


def _flops_convention(result: SubmissionResult) -> str:
    """How the record's FLOPs were counted, from its ``convention`` field (fvcore for records without one)."""
    convention = getattr(result.complexity, "convention", None) or DEFAULT_CONVENTION
    return CONVENTION_TEXT.get(convention, f"{convention} convention")


def _notes(result: SubmissionResult, valid: str, test: str, memory_measured: bool) -> tuple[str, ...]:
    """What the figures are and where they come from: datasets, FLOP convention, runtime rule, memory, device."""
    env = result.environment
    height, width = result.complexity.input_size
    device = env.device_name or env.device or "unknown device"
    if env.device and env.device_name and env.device not in env.device_name:
        device = f"{env.device_name} ({env.device})"
    pair = valid if valid == test else f"{valid} and {test}"
    per_set = f"on {valid}" if valid == test else f"on each of {pair}, averaged over the two sets"
    if memory_measured:
        memory = f"GPU Mem.: peak CUDA memory (MiB) over the {pair} runs."
    elif (env.device or "").startswith("cuda"):
        memory = f"GPU Mem.: not recorded for {pair}: re-run them on {env.device} to fill it in."
    else:
        memory = (f"GPU Mem.: not measured (the record was made on {env.device or 'an unknown device'}, "
                  "not CUDA): run it on a GPU to fill it in.")
    return (
        f"{result.submission}: PSNR [val] on {valid}, PSNR [test] on {test} (RGB, dB).",
        (f"FLOPs: {_flops_convention(result)}, at 1x3x{height}x{width}; "
         "Activations: Conv2d output elements at the same size."),
        f"Runtime: mean of per-image medians {per_set}.",
        memory,
        f"Device: {device}; ntire-bench {env.harness_version or 'unknown version'}.",
    )


def build_factsheet(result: SubmissionResult, valid: str = VALID_DATASET, test: str = TEST_DATASET) -> Factsheet:
    """The factsheet figures of ``result``; FactsheetError says which figure is missing and how to get it."""
    if result.status != OK:
        reason = f" ({result.error})" if result.error else ""
        raise FactsheetError(f"{result.label}: status is {result.status}{reason}, so its figures are not the "
                             "trained network's: run it to completion with its checkpoint")
    sets = (_dataset(result, valid, "valid"), _dataset(result, test, "test"))
    complexity = result.complexity
    if complexity is None or None in (complexity.params, complexity.flops, complexity.activations):
        raise FactsheetError(f"{result.label}: no params, FLOPs or activations recorded: re-run it to count them")
    memories = [d.peak_memory_mb for d in sets if d.peak_memory_mb is not None]
    runtime = (sets[0].runtime_ms.mean + sets[1].runtime_ms.mean) / 2  # the 2023 table's "Ave." of the two sets
    values = (sets[0].psnr, sets[1].psnr, complexity.params / 1e6, complexity.flops / 1e9,
              max(memories) if memories else None, complexity.activations / 1e6, runtime)
    return Factsheet(values=values, notes=_notes(result, valid, test, memory_measured=bool(memories)))


def _cells(sheet: Factsheet, dash: str) -> list[str]:
    return [dash if value is None else f"{value:.{digits}f}" for value, (_, digits) in zip(sheet.values, COLUMNS)]


def to_markdown(sheet: Factsheet) -> str:
    """The table as Markdown, the notes as a list under it."""
    headers = [header for header, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
             "| " + " | ".join(_cells(sheet, "—")) + " |", ""]
    lines += [f"- {note}" for note in sheet.notes]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped, for use in running text."""
    return "".join(LATEX_SPECIALS.get(char, char) for char in text).replace("—", "---")


def to_latex(sheet: Factsheet) -> str:
    """The table as a LaTeX ``table`` (the factsheet template's layout), the notes as its caption."""
    spec = "|" + "c|" * len(COLUMNS)
    lines = [
        r"\begin{table}[t]",
        r"    \centering",
        r"    \caption{" + latex_escape(" ".join(sheet.notes)) + "}",
        r"    \begin{tabular}{" + spec + r"}\hline",
        "        " + " & ".join(latex_escape(header) for header, _ in COLUMNS) + r" \\ \hline",
        "        " + " & ".join(_cells(sheet, "---")) + r" \\ \hline",
        r"    \end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def factsheet_text(result: SubmissionResult, valid: str = VALID_DATASET, test: str = TEST_DATASET,
                   formats: tuple[str, ...] = FORMATS) -> str:
    """The factsheet table of ``result`` as text: Markdown, then LaTeX (or the ``formats`` asked for)."""
    sheet = build_factsheet(result, valid, test)
    writers = {"markdown": to_markdown, "latex": to_latex}
    unknown = [f for f in formats if f not in writers]
    if unknown:
        raise ValueError(f"unknown factsheet format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    return "\n".join(writers[f](sheet) for f in formats)
