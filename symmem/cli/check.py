"""`symmem check`: build the model in PyTorch at small sizes and compare the formulas
with what one training step really holds (parameters, saved activations, peak)."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.check import CheckReport, default_device, step_estimate
from symmem.check import check as run_check
from symmem.cli.common import ModelArg, ModelNameOpt, SetOpt, parse_sets, user_errors
from symmem.model import load
from symmem.options import ATTENTIONS, DEVICES
from symmem.policy import ACT_DTYPES, ActPolicy
from symmem.units import format_bytes

#: a step this large (by the formula) gets a note first: it runs for minutes on a CPU
LARGE_STEP = 2**30


def check(
    model: ModelArg,
    set_: SetOpt = None,
    model_name: ModelNameOpt = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Where the step runs and which rules the formulas follow: "
            f"{' or '.join(DEVICES)} (default: cuda when a GPU is present, as users plan "
            "GPU memory; else cpu)."
        ),
    ] = None,
    dtype: Annotated[
        str, typer.Option(help=f"Activation (and model) dtype: {', '.join(ACT_DTYPES)}.")
    ] = "fp32",
    attention: Annotated[
        str,
        typer.Option(
            help=f"Attention implementation for layers that name none: {', '.join(ATTENTIONS)}."
        ),
    ] = "sdpa",
    dropout: Annotated[
        bool, typer.Option("--dropout/--no-dropout", help="Training dropout active.")
    ] = True,
    batch: Annotated[int | None, typer.Option(help="Batch size (same as --set batch=N).")] = None,
    seq_len: Annotated[
        int | None, typer.Option(help="Sequence length (same as --set seq_len=N).")
    ] = None,
) -> None:
    """Build the network in PyTorch (shrink it with --set), run one training step on it and
    print formula vs measured: parameters per layer, bytes saved for backward, peak bytes."""
    with user_errors():
        sets = parse_sets(set_)
        if batch is not None:
            sets["batch"] = batch
        if seq_len is not None:
            sets["seq_len"] = seq_len
        m = load(model, model=model_name, set_values=sets)
        if device is None:
            device = default_device()
        policy = ActPolicy(attention=attention, device=device, dropout=dropout, dtype=dtype)  # type: ignore[arg-type]
        est = step_estimate(m, policy)
        if est is not None and est >= LARGE_STEP:
            at = ", ".join(
                f"{k} = {v.value:,}"
                for k, v in m.value_sources().items()
                if isinstance(v.value, int)
            )
            typer.echo(
                f"symmem check: one training step of {m.name} on {device} at {at}: about "
                f"{format_bytes(est)} by the formula; at full size this takes minutes on a CPU "
                "(--set smaller sizes: the formulas are checked at any size)",
                err=True,
            )
        try:
            report = run_check(m, policy)
        except NotImplementedError as exc:
            typer.echo(f"symmem check: {exc}", err=True)
            raise typer.Exit(1) from None
        _render(report)
        if not report.accepted:
            raise typer.Exit(2)


def _render(report: CheckReport) -> None:
    p = report.policy
    typer.echo(
        f"{report.model}: {p.dtype}, {p.device}, attention {p.attention}, dropout "
        f"{'on' if p.dropout else 'off'}"
    )
    typer.echo("at " + ", ".join(f"{k}={v}" for k, v in sorted(report.values.items())))
    typer.echo("")
    w = max([len(r.path) for r in report.params] + [5])
    saved = {r.path: r for r in report.saved_by_layer}
    typer.echo(f"{'':{w}}  {'parameters':>27}  {'saved for backward (bytes)':>29}")
    typer.echo(
        f"{'layer'.ljust(w)}  {'formula':>12}  {'PyTorch':>12}  {'formula':>13}  {'measured':>13}"
    )
    for r in report.params:
        mark = "" if r.exact else "  MISMATCH"
        s = saved.get(r.path)
        cells = f"  {s.formula:>13,}  {s.measured:>13,}" if s else f"  {0:>13,}  {0:>13,}"
        if s and s.formula != s.measured:
            mark += "  (saved differs)"
        typer.echo(f"{r.path.ljust(w)}  {r.formula:>12,}  {r.measured:>12,}{cells}{mark}")
    for s in report.saved_by_layer:
        if s.path not in {r.path for r in report.params}:
            typer.echo(
                f"{s.path.ljust(w)}  {'':>12}  {'':>12}  {s.formula:>13,}  {s.measured:>13,}"
            )
    typer.echo("")
    typer.echo(f"{'':24}  {'formula':>14}  {'measured':>14}  {'error':>8}")
    for c in (report.params_total, report.saved, report.peak):
        unit = "" if c is report.params_total else " B"
        typer.echo(
            f"{c.what:24}  {c.formula:>12,}{unit:2}  {c.measured:>12,}{unit:2}  "
            f"{c.rel_error:>+8.2%}"
        )
