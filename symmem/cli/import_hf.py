"""`symmem import-hf`: a Hugging Face config.json -> a readable .mem file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from symmem.cli.common import user_errors


def import_hf(
    config: Annotated[str, typer.Argument(help="A Hugging Face config.json on disk (never downloaded).", show_default=False)],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the .mem file here (default: print it).")] = None,
) -> None:
    """Convert a config.json into a .mem file (symbols named after the config's fields)."""
    from symmem.errors import SymmemError
    from symmem.hf.importer import import_file
    from symmem.model import parse

    with user_errors():
        text = import_file(config)
        parse(text, filename=output or f"{config}.mem")  # the file must check before it is written
        if output is None:
            typer.echo(text, nl=False)
            return
        target = Path(output)
        if target.is_dir():
            raise SymmemError(f"{output}: is a directory; give the path of the .mem file to write")
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent if str(target.parent) else ".")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, target)
        except OSError as exc:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)  # never leave the temporary file behind
            raise SymmemError(f"{output}: cannot write: {exc}") from None
        typer.echo(f"wrote {output}", err=True)


COMMAND = ("import-hf", import_hf)
