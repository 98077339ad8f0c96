"""`symmem zoo`: the bundled example models, usable by name instead of a path."""

from __future__ import annotations

import typer

from symmem.cli.common import human, user_errors
from symmem.errors import SymmemError
from symmem.model import parse
from symmem.sources import zoo_names, zoo_text


def zoo() -> None:
    """List the bundled models: name, parameter count, and the first line of their description."""
    with user_errors():
        try:
            names = zoo_names()
        except (ModuleNotFoundError, FileNotFoundError):
            raise SymmemError("no bundled models are installed") from None
        rows = []
        for name in names:
            text = zoo_text(name)
            first = next(
                (ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("#")), ""
            )
            n_models = sum(1 for ln in text.splitlines() if ln.startswith("model "))
            try:
                total = parse(text, filename=f"{name}.mem").params().total.evaluate()
                count = human(total) if isinstance(total, int) else "symbolic"
            except SymmemError:
                count = f"{n_models} models (--model)" if n_models > 1 else "?"
            rows.append((name, count, first))
        width = max((len(r[0]) for r in rows), default=4)
        cwidth = max((len(r[1]) for r in rows), default=10)
        for name, count, first in rows:
            typer.echo(f"{name.ljust(width)}  {count.rjust(cwidth)}  {first}")
