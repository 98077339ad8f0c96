"""`symmem memory`: where every byte of a training step or of inference goes, per GPU."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from symmem.cli._options import memory_options
from symmem.cli.common import (
    BatchOpt,
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SeqLenOpt,
    SetOpt,
    echo_json,
    load_model,
    user_errors,
    values_doc,
    values_lines,
)
from symmem.dtype_table import dtype_table
from symmem.memory import MemoryResult
from symmem.model import Model
from symmem.options import MemoryOptions
from symmem.units import format_bytes

DtypesOpt = Annotated[
    bool,
    typer.Option(
        "--dtypes",
        help="One table across fp32 / 16-bit / int8 / int4 (and the model's own format): "
        "inference weights and full training with AdamW (weights + gradients + optimizer).",
    ),
]
PerLayerOpt = Annotated[
    bool, typer.Option("--per-layer", help="Also print the bytes of each layer.")
]


@memory_options
def memory(
    model: ModelArg,
    options: MemoryOptions,
    per_layer: PerLayerOpt = False,
    dtypes: DtypesOpt = False,
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """Print the memory per GPU of a training step or of inference: each component exactly, in
    binary units, with its formula."""
    with user_errors():
        m = load_model(model, set_, free, model_name, batch, seq_len)
        if dtypes:
            _dtypes(m, json_)
            return
        result = m.memory(options=options)
        used = [s.name for s in result.total.expr.free_symbols]
        if json_:
            echo_json({"values": values_doc(m, used, result.config), **result.to_json()})
            return
        _render(m, result, per_layer, used)


def _dtypes(m: Model, json_: bool) -> None:
    rows = dtype_table(m)
    used = [s.name for s in m.params().total.expr.free_symbols]
    if json_:
        echo_json({"values": values_doc(m, used), "rows": [r.as_dict() for r in rows]})
        return
    typer.echo(f"{m.name}: weights per format, and full training with AdamW")
    for line in values_lines(m, used):
        typer.echo(line)
    typer.echo("")
    head = ("format", "inference weights", "training: weights + grads + AdamW")
    table = [head]
    for r in rows:
        train = "frozen (LoRA / QLoRA only)"
        if r.training is not None and r.train_options is not None:
            train = f"{format_bytes(r.training)}  ({r.train_options['precision']})"
        table.append((r.label, format_bytes(r.weights), train))
    w = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        typer.echo(f"{row[0].ljust(w[0])}  {row[1].rjust(w[1])}  {row[2].rjust(w[2])}")
    typer.echo("")
    typer.echo(
        "components summed (accelerate estimate-memory takes their maximum, which halves 16-bit "
        "Adam training); activations, KV cache and overhead not included: symmem memory MODEL"
    )


def _show(value: Any) -> tuple[str, str]:
    """(exact bytes, binary units) of an evaluated component."""
    if isinstance(value, int):
        return f"{value:,}", format_bytes(value)
    try:
        number = float(value)
    except TypeError:
        return str(value), ""
    return f"{value} (= {number:,.1f})", format_bytes(number)


def _render(m: Model, result: MemoryResult, per_layer: bool, used: list[str]) -> None:
    assumed = result.config.assumptions()
    if assumed:
        typer.echo(assumed)
    typer.echo(f"{m.name}: {result.config.summary()}")
    for line in values_lines(m, used, result.config):
        typer.echo(line)
    typer.echo("")
    rows = []
    for name, q in result.components().items():
        exact, binary = _show(q.evaluate())
        rows.append((name, exact, binary))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    w[0], w[2] = max(w[0], len("component")), max(w[2], len("binary"))
    typer.echo(f"{'component'.ljust(w[0])}  {'bytes'.rjust(w[1])}  {'binary'.rjust(w[2])}")
    for name, exact, binary in rows:
        if name == "total":
            typer.echo("-" * (w[0] + w[1] + w[2] + 4))
        typer.echo(f"{name.ljust(w[0])}  {exact.rjust(w[1])}  {binary.rjust(w[2])}")
    if result.config.offload and result.host is not None:
        exact, binary = _show(result.host.evaluate())
        typer.echo(f"host memory per node (offloaded, not in total): {exact} ({binary})")
    typer.echo("")
    typer.echo("formulas (bytes):")
    for name, q in result.components().items():
        typer.echo(f"  {name} = {q.expr}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if per_layer:
        typer.echo("")
        typer.echo(
            "per layer (all repeat instances; pipeline stages and full recompute not applied):"
        )
        cols = ("weights", "gradients", "optimizer", "activations", "kv_cache")
        used = [c for c in cols if any(getattr(r, c) != 0 for r in result.rows)]
        table = [("layer", *used)]
        for r in result.rows:
            vals = []
            for c in used:
                v = m.quantity(getattr(r, c)).evaluate()
                vals.append(_show(v)[1] or str(v) if v != 0 else "0")
            table.append((r.path, *vals))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            typer.echo(
                "  ".join(
                    c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
                )
            )
