"""`symmem layouts`: every parallel layout of a training job that fits N GPUs, in order."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.cli._options import memory_options
from symmem.cli._quantity import BudgetOpt, GpuOpt, budget_bytes
from symmem.cli.common import (
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SetOpt,
    echo_json,
    head_doc,
    head_lines,
    load_model,
    user_errors,
)
from symmem.layouts import LayoutSearch, search, to_json, write_csv
from symmem.memory.config import resolve
from symmem.options import MemoryOptions
from symmem.units import format_bytes, parse_budget

GpusOpt = Annotated[int, typer.Option("--gpus", "-n", help="GPUs of the job.", min=1)]
SeqOpt = Annotated[int, typer.Option("--seq-len", help="Sequence length of training.", min=1)]
GlobalOpt = Annotated[
    int | None,
    typer.Option(
        "--global-batch", help="Sequences per step: dp x micro-batch x micro-batches.", min=1
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option("--host-budget", help="Host memory per node (1.5TiB...): a second budget."),
]
CsvOpt = Annotated[str | None, typer.Option("--csv", help="Write every layout to this CSV file.")]
LimitOpt = Annotated[
    int, typer.Option("--limit", help="Layouts printed (0: all); --json and --csv hold all.")
]


@memory_options
def layouts(
    model: ModelArg,
    options: MemoryOptions,
    gpus: GpusOpt = 8,
    seq_len: SeqOpt = 4096,
    budget: BudgetOpt = None,
    gpu: GpuOpt = None,
    global_batch: GlobalOpt = None,
    host_budget: HostOpt = None,
    csv: CsvOpt = None,
    limit: LimitOpt = 20,
    set_: SetOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """List every layout (tp, pp, virtual stages, dp, cp, ep, ZeRO, recompute, micro-batch,
    offload) whose training memory fits each GPU (and each node's host memory), in the order of
    Narayanan et al. 2021. The other memory options (precision, optimizer...) apply to all."""
    with user_errors():
        m = load_model(model, set_, free, model_name)
        cap, given = budget_bytes(budget, gpu)
        host = parse_budget(host_budget, what="host budget") if host_budget else None
        result = search(
            m,
            gpus=gpus,
            gpu_budget=cap,
            seq_len=seq_len,
            global_batch=global_batch,
            host_budget=host,
            gpus_per_node=options.gpus_per_node,
            options=options,
        )
        if csv:
            write_csv(result, csv)
        # what the figures assume: the options resolved from the model, and the model's values
        # (batch and seq_len are the search's: the micro-batch and --seq-len)
        config, _, _ = resolve(options.replace(mode="train"), m.graph.options)
        used = [n for n in m.graph.symbols if n not in ("batch", "seq_len")]
        if json_:
            echo_json({**head_doc(m, used, config), **to_json(result)})
            return
        for line in head_lines(m, used, config):
            typer.echo(line)
        _render(m.name, result, given, limit)


def _render(name: str, r: LayoutSearch, given: str, limit: int) -> None:
    host = f", host {format_bytes(r.host_budget)} per node" if r.host_budget else ""
    typer.echo(
        f"{name}: {len(r.layouts):,} of {r.candidates:,} layouts of {r.gpus} GPUs fit "
        f"{format_bytes(r.gpu_budget)} per GPU ({given}){host}; seq_len {r.seq_len}"
        + (f", global batch {r.global_batch}" if r.global_batch else "")
    )
    head: tuple[str, ...] = ("tp", "pp", "vp", "dp", "cp", "ep", "zero", "recompute", "mb", "m")
    head += ("offload", "per GPU", "headroom", "host/node")
    rows: list[tuple[str, ...]] = [head]
    shown = r.layouts if limit == 0 else r.layouts[:limit]
    for x in shown:
        rows.append(
            (
                *(str(v) for v in (x.tp, x.pp, x.virtual_stages, x.dp, x.cp, x.ep, x.zero)),
                x.checkpointing,
                str(x.micro_batch),
                str(x.micro_batches),
                "+".join(x.offload) or "-",
                format_bytes(x.gpu),
                format_bytes(x.gpu_headroom),
                format_bytes(x.host) if x.host else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        typer.echo("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    if len(shown) < len(r.layouts):
        typer.echo(f"... {len(r.layouts) - len(shown):,} more (--limit 0, --json or --csv)")
    for note in r.notes:
        typer.echo(f"note: {note}")
