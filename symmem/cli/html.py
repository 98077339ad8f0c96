"""`symmem html`: a self-contained calculator page of a model's memory (docs/page.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.cli._options import memory_options
from symmem.cli.common import FreeOpt, ModelArg, ModelNameOpt, SetOpt, load_model, user_errors
from symmem.options import MemoryOptions
from symmem.page import write_page

OutOpt = Annotated[
    str, typer.Option("--out", "-o", help="Where to write the page (an .html file).")
]


@memory_options
def html(
    model: ModelArg,
    options: MemoryOptions,
    out: OutOpt = "page.html",
    set_: SetOpt = None,
    free: FreeOpt = None,
    model_name: ModelNameOpt = None,
) -> None:
    """Write one HTML file that computes the model's memory in the browser, from the same exact
    expressions as `symmem memory` (no network, no server). The memory options set the form's
    first state."""
    with user_errors():
        m = load_model(model, set_, free, model_name)
        size = write_page(m, out, options, source=model)
        typer.echo(f"wrote {out} ({size:,} bytes)")
