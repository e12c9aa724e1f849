"""``ntire-bench factsheet``: the NTIRE factsheet table of one stored result, as Markdown and LaTeX."""

from __future__ import annotations

from pathlib import Path

import click

from ntire_bench.cli.common import DataError


@click.command("factsheet")
@click.argument("result_file", metavar="RESULTS/NAME.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--valid", "valid", default="DIV2K_LSDIR_valid", show_default=True, metavar="NAME",
              help="Dataset whose PSNR is the factsheet's PSNR [val] (e.g. Set5 where DIV2K is absent).")
@click.option("--test", "test", default="DIV2K_LSDIR_test", show_default=True, metavar="NAME",
              help="Dataset whose PSNR is the factsheet's PSNR [test].")
@click.option("--format", "output_format", type=click.Choice(["both", "markdown", "latex"]), default="both",
              show_default=True, help="Which table to print.")
def factsheet_command(result_file: Path, valid: str, test: str, output_format: str) -> None:
    """Print the factsheet table of a results file written by `ntire-bench run`.

    PSNR [val] and [test] (RGB), Params [M], FLOPs [G], GPU Mem. [M], Activations [M] and
    Runtime [ms] (mean of per-image medians, averaged over the two sets), with the FLOP
    convention, the datasets, the device and the harness version written under the table.
    Nothing is re-measured. Exits 2 when the file or a needed figure is missing.
    """
    from ntire_bench.report.factsheet import FORMATS, FactsheetError, factsheet_text
    from ntire_bench.results.store import ResultsError, read_result

    if not result_file.is_file():
        raise DataError(f"{result_file}: no such results file; run `ntire-bench run` first, then pass "
                        "RESULTS/<submission>.json")
    try:
        result = read_result(result_file)
        formats = FORMATS if output_format == "both" else (output_format,)
        click.echo(factsheet_text(result, valid=valid, test=test, formats=formats), nl=False)
    except (ResultsError, FactsheetError) as exc:
        raise DataError(str(exc)) from None
