"""The command line: each command is a thin shell over one API call (one module per command)."""

from __future__ import annotations

import typer

from symmem.cli import latex as _latex
from symmem.cli import params as _params

app = typer.Typer(
    name="symmem",
    help="Exact symbolic formulas for the parameters and memory of neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("params")(_params.params)
app.command("latex")(_latex.latex)


def main() -> None:
    app()
