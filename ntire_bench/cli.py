"""Command-line interface: a thin click layer over the Python API."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ntire-bench")
def main() -> None:
    """Evaluate NTIRE-style x4 efficient super-resolution submissions.

    Typical use: `ntire-bench run submissions/`, then `ntire-bench score`.
    """


if __name__ == "__main__":
    main()
