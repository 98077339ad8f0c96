"""`symmem params`: exact parameter counts, per layer and in total."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import sympy
import typer

from symmem.cli.common import (
    BatchOpt,
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SeqLenOpt,
    SetOpt,
    echo_json,
    human,
    load_model,
    user_errors,
    values_doc,
    values_lines,
)
from symmem.export import params_json


def params(
    model: ModelArg,
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
    active_embeddings: Annotated[
        str | None,
        typer.Option(
            help="MoE active parameters: 'count' or 'exclude' the input embedding (default: the "
            "model's own convention)."
        ),
    ] = None,
    include_buffers: Annotated[
        bool,
        typer.Option(
            "--include-buffers",
            help="Count stored buffers (batchnorm statistics, router score biases) as parameters, "
            "as checkpoint tensor counts do.",
        ),
    ] = False,
) -> None:
    """Print the exact parameter count: per layer, the formula, and the total."""
    with user_errors():
        m = load_model(model, set_, free, model_name, batch, seq_len)
        result = m.params(active_embeddings=active_embeddings, include_buffers=include_buffers)
        used = [s.name for s in result.total.expr.free_symbols]
        if json_:
            echo_json({"values": values_doc(m, used), **params_json(result, m.symbols, m.values)})
            return
        for line in values_lines(m, used):
            typer.echo(line)
        rows: list[tuple[str, ...]] = []
        for row in result.rows:
            count = m.quantity(row.count).evaluate()
            formula = (
                str(row.formula)
                if row.multiplicity == 1
                else f"{row.multiplicity} * ({row.formula})"
            )
            shown = human(count) if isinstance(count, int) else str(count)
            if row.tied_to:
                shown += f"  (weight tied to {row.tied_to})"
            rows.append((row.path, row.kind, formula, shown))
        _table(("layer", "kind", "formula", "parameters"), rows)
        total = result.total.evaluate()
        typer.echo("")
        for name, q in result.parts:
            n = q.evaluate()
            typer.echo(f"part {name}: {human(n) if isinstance(n, int) else n}")
        typer.echo(f"total formula: {sympy.expand(result.total.expr)}")
        typer.echo(f"total:         {human(total) if isinstance(total, int) else total}")
        if result.has_experts:
            active = result.active.evaluate()
            conv = "counting" if result.active_embeddings == "count" else "excluding"
            typer.echo(
                f"active/token:  {human(active) if isinstance(active, int) else active}  ({conv} "
                "the input embedding)"
            )
        buffers = result.buffers.evaluate()
        if buffers != 0:
            typer.echo(
                f"buffers:       {human(buffers) if isinstance(buffers, int) else buffers}  (not "
                "parameters)"
            )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    widths[2] = min(widths[2], 60)

    def line(cells: tuple[str, ...]) -> str:
        parts = []
        for i, c in enumerate(cells):
            c = c if len(c) <= widths[i] else c[: widths[i] - 1] + "…"
            parts.append(c.rjust(widths[i]) if i == len(cells) - 1 else c.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    typer.echo(line(header))
    typer.echo("  ".join("-" * w for w in widths))
    for r in rows:
        typer.echo(line(r))
