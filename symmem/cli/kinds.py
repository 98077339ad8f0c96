"""`symmem kinds`: the layer catalogue, with each kind's arguments."""

from __future__ import annotations

from dataclasses import MISSING, fields

import typer

from symmem.layers import kinds as all_kinds


def kinds() -> None:
    """List the layer kinds the DSL knows, with their arguments and defaults."""
    for cls in all_kinds():
        args = []
        for f in fields(cls):  # type: ignore[arg-type]
            if f.default is MISSING:
                args.append(f.name)
            else:
                default = f.default
                shown = (
                    "none"
                    if default is None
                    else str(default).lower()
                    if isinstance(default, bool)
                    else str(default)
                )
                args.append(f"{f.name}={shown}")
        alias = f"  (also: {', '.join(cls.aliases)})" if cls.aliases else ""
        typer.echo(f"{cls.kind}({', '.join(args)}){alias}")
        if cls.summary:
            typer.echo(f"    {cls.summary}")
