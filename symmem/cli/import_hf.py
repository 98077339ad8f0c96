"""`symmem import-hf`: a Hugging Face config.json -> a readable .mem file."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.cli.common import user_errors
from symmem.files import atomic_text
from symmem.hf.importer import import_file
from symmem.model import parse


def import_hf(
    config: Annotated[
        str,
        typer.Argument(
            help="A Hugging Face config.json on disk (never downloaded).", show_default=False
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write the .mem file here (default, or -: print it)."),
    ] = None,
) -> None:
    """Convert a config.json into a .mem file (symbols named after the config's fields)."""
    with user_errors():
        text = import_file(config)
        parse(
            text, filename=output if output not in (None, "-") else f"{config}.mem"
        )  # the file must check before it is written
        if output is None or output == "-":
            typer.echo(text, nl=False)
            return
        with atomic_text(output) as fh:
            fh.write(text)
        typer.echo(f"wrote {output}", err=True)
