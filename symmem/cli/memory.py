"""`symmem memory`: where every byte of a training step or of inference goes, per GPU."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from symmem.cli.common import (
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SetOpt,
    echo_json,
    load_model,
    user_errors,
)

_Opt = typer.Option


def memory(
    model: ModelArg,
    mode: Annotated[str, _Opt(help="train (a training step) or infer (inference with a KV cache).")] = "train",
    precision: Annotated[str, _Opt(help="fp32, fp16, bf16, fp8, mixed-fp16, mixed-bf16 (= mixed), amp-fp16, amp-bf16 (= amp).")] = "fp32",
    optimizer: Annotated[str, _Opt(help="sgd, sgd-momentum, adam, adamw, adafactor, adafactor-momentum, adam8bit, lion.")] = "adamw",
    checkpointing: Annotated[str, _Opt(help="Activation checkpointing: none, full or selective.")] = "none",
    tp: Annotated[int, _Opt(help="Tensor-parallel ranks.")] = 1,
    pp: Annotated[int, _Opt(help="Pipeline stages (1F1B).")] = 1,
    dp: Annotated[int, _Opt(help="Data-parallel ranks (ZeRO shards over them).")] = 1,
    zero: Annotated[int, _Opt(help="ZeRO stage 0-3 (FSDP full sharding = 3).")] = 0,
    sp: Annotated[bool, _Opt("--sp", help="Sequence parallelism (with --tp).")] = False,
    ep: Annotated[int, _Opt(help="Expert-parallel ranks (MoE routed experts).")] = 1,
    micro_batches: Annotated[int | None, _Opt(help="Micro-batches in flight on the first pipeline stage (default: pp).")] = None,
    attention: Annotated[str, _Opt(help="Attention implementation for layers that name none: eager, sdpa or flash.")] = "sdpa",
    device: Annotated[str, _Opt(help="cuda (default) or cpu: what PyTorch saves differs.")] = "cuda",
    dropout: Annotated[bool, _Opt("--dropout/--no-dropout", help="Training dropout active.")] = True,
    weight_dtype: Annotated[str | None, _Opt(help="Override the precision's weight dtype.")] = None,
    grad_dtype: Annotated[str | None, _Opt(help="Override the precision's gradient dtype (fp32: Megatron's gradient buffer).")] = None,
    master: Annotated[bool | None, _Opt("--master/--no-master", help="fp32 master weights (default: the precision's).", show_default=False)] = None,
    grad_fp32_copy: Annotated[bool, _Opt("--grad-fp32-copy", help="An fp32 copy of the gradients in the optimizer (ZeRO-Infinity, Megatron fp16).")] = False,
    state_dtype: Annotated[str | None, _Opt(help="Optimizer state dtype: fp32 (default), bf16, fp16.")] = None,
    act_dtype: Annotated[str | None, _Opt(help="Override the precision's activation dtype.")] = None,
    kv_dtype: Annotated[str | None, _Opt(help="KV-cache dtype: fp32, fp16, bf16, fp8, int8 (default: the weights' 16-bit dtype, else the activations').")] = None,
    quant: Annotated[str | None, _Opt(help="Weight quantization of the linear matrices: int8, int4 or nf4.")] = None,
    group_size: Annotated[int | None, _Opt(help="Weights per quantization scale (default: int8 per row, int4 128, nf4 64).")] = None,
    double_quant: Annotated[bool, _Opt("--double-quant", help="nf4 double quantization of the block scales (QLoRA).")] = False,
    lora_rank: Annotated[int | None, _Opt(help="LoRA rank r: train adapters only (with --quant nf4: QLoRA).")] = None,
    lora_targets: Annotated[str | None, _Opt(help="Comma-separated matrices LoRA adapts (default q_proj,v_proj; all-linear).")] = None,
    lora_dtype: Annotated[str, _Opt(help="LoRA adapter dtype (PEFT keeps adapters in fp32 by default): fp32, bf16, fp16.")] = "fp32",
    overhead: Annotated[str | None, _Opt(help="Framework overhead: bytes or a size (1GiB); default 1 GiB on cuda, 0 on cpu.")] = None,
    per_layer: Annotated[bool, _Opt("--per-layer", help="Also print the bytes of each layer.")] = False,
    set_: SetOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """Print the memory per GPU of a training step or of inference: each component exactly, in binary units, with its formula."""
    from symmem.memory import memory as compute

    with user_errors():
        m = load_model(model, set_, free, model_name)
        result = compute(
            m, mode, precision=precision, optimizer=optimizer, checkpointing=checkpointing, tp=tp, pp=pp, dp=dp,
            zero=zero, sp=sp, ep=ep, micro_batches=micro_batches, attention=attention, device=device, dropout=dropout,
            weight_dtype=weight_dtype, grad_dtype=grad_dtype, master=master, grad_fp32_copy=grad_fp32_copy,
            state_dtype=state_dtype, act_dtype=act_dtype, kv_dtype=kv_dtype, quant=quant, group_size=group_size,
            double_quant=double_quant, lora_rank=lora_rank, lora_targets=lora_targets, lora_dtype=lora_dtype,
            overhead=_overhead(overhead),
        )
        if json_:
            echo_json(result.to_json())
            return
        _render(m, result, per_layer)


def _overhead(text: str | None) -> int | None:
    from symmem.units import parse_bytes

    if text is None:
        return None
    if text.strip() in ("0", "0B", "0b"):
        return 0
    return parse_bytes(text, what="--overhead")


def _show(value: Any) -> tuple[str, str]:
    """(exact bytes, binary units) of an evaluated component."""
    from symmem.units import format_bytes

    if isinstance(value, int):
        return f"{value:,}", format_bytes(value)
    try:
        number = float(value)
    except TypeError:
        return str(value), ""
    return f"{value} (= {number:,.1f})", format_bytes(number)


def _render(m: Any, result: Any, per_layer: bool) -> None:
    typer.echo(f"{m.name}: {result.config.summary()}")
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
    typer.echo("")
    typer.echo("formulas (bytes):")
    for name, q in result.components().items():
        typer.echo(f"  {name} = {q.expr}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if per_layer:
        typer.echo("")
        typer.echo("per layer (all repeat instances; pipeline stages and full recompute not applied):")
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
            typer.echo("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
