"""`symmem serving`: an inference server's budget per GPU (vLLM, SGLang, TensorRT-LLM)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from symmem.cli.common import JsonOpt, ModelArg, echo_json, load_model, user_errors
from symmem.errors import OptionError
from symmem.model import Model
from symmem.serving import ENGINES, ServingOptions, ServingPlan, facts_of, plan, smallest_tp
from symmem.serving.common import KV_DTYPES
from symmem.serving.result import ENTRYPOINTS, MXFP4_BACKENDS, SERVING_DTYPES
from symmem.units import format_bytes, parse_bytes

FOR = ("max-model-len", "tp", "concurrency")


def _size(text: str | None, what: str) -> int | None:
    return None if text is None else parse_bytes(text, what=what, minimum=0)


def serving(
    model: ModelArg,
    gpu: Annotated[
        str | None, typer.Option("--gpu", help="A catalogued GPU (symmem gpus); default h100.")
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget", help="One GPU's total as CUDA reports it (79.19GiB for an H100 80GB)."
        ),
    ] = None,
    tp: Annotated[int, typer.Option("--tp", help="Tensor-parallel ranks.")] = 1,
    pp: Annotated[int, typer.Option("--pp", help="Pipeline stages.")] = 1,
    engine: Annotated[
        str, typer.Option("--engine", help=f"One of: {', '.join(ENGINES)}.")
    ] = "vllm",
    max_model_len: Annotated[
        int | None,
        typer.Option("--max-model-len", help="Context per request (default: the config's)."),
    ] = None,
    gpu_memory_utilization: Annotated[
        float | None,
        typer.Option(
            "--gpu-memory-utilization",
            help="vLLM's fraction of the GPU (SGLang: mem_fraction_static; TensorRT-LLM: "
            "free_gpu_memory_fraction).",
        ),
    ] = None,
    max_num_batched_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-num-batched-tokens", help="Tokens per step (default: the engine's for the GPU)."
        ),
    ] = None,
    max_num_seqs: Annotated[
        int | None,
        typer.Option(
            "--max-num-seqs", help="Sequences per step (default: the engine's for the GPU)."
        ),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            help=f"The weights' dtype: {', '.join(SERVING_DTYPES)} (default: the checkpoint's).",
        ),
    ] = None,
    quantization: Annotated[
        str | None,
        typer.Option(
            "--quantization",
            help="The weights' layout: none (16-bit) or one of symmem's formats "
            "(docs/memory.md; default: the checkpoint's).",
        ),
    ] = None,
    kv_dtype: Annotated[
        str, typer.Option("--kv-dtype", help=f"One of: {', '.join(KV_DTYPES)}.")
    ] = "auto",
    block_size: Annotated[
        int | None, typer.Option("--block-size", help="Tokens per KV page (vLLM 16).")
    ] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="No CUDA graphs.")] = False,
    non_torch: Annotated[
        str | None,
        typer.Option("--non-torch", help="Non-torch memory per GPU (default: docs/serving.md)."),
    ] = None,
    cuda_graph_memory: Annotated[
        str | None,
        typer.Option("--cuda-graph-memory", help="CUDA-graph memory the engine subtracts."),
    ] = None,
    kv_cache_memory: Annotated[
        str | None,
        typer.Option(
            "--kv-cache-memory", help="vLLM's --kv-cache-memory: KV bytes per GPU, not profiled."
        ),
    ] = None,
    mxfp4_backend: Annotated[
        str | None,
        typer.Option(
            "--mxfp4-backend",
            help=f"vLLM's MXFP4 MoE kernel: {', '.join(MXFP4_BACKENDS)} (default: vLLM's for the "
            "GPU).",
        ),
    ] = None,
    entrypoint: Annotated[
        str,
        typer.Option(
            "--entrypoint",
            help=f"How vLLM is started, which sets its batch defaults: {', '.join(ENTRYPOINTS)} "
            "(`vllm serve`, or the Python LLM class).",
        ),
    ] = "serve",
    for_: Annotated[str | None, typer.Option("--for", help=f"Answer: {', '.join(FOR)}.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Plan an inference server per GPU as the engine budgets it (docs/serving.md)."""
    with user_errors():
        if for_ is not None and for_ not in FOR:
            raise OptionError(f"--for must be one of {', '.join(FOR)}, not '{for_}'")
        m = load_model(model, None, None)
        facts = facts_of(m)
        opts = ServingOptions(
            engine=engine,
            gpu=gpu,
            budget=_size(budget, "budget"),
            tp=tp,
            pp=pp,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            max_num_batched_tokens=max_num_batched_tokens,
            max_num_seqs=max_num_seqs,
            dtype=dtype,
            quantization=quantization,
            kv_dtype=kv_dtype,
            block_size=block_size,
            enforce_eager=enforce_eager,
            non_torch_bytes=_size(non_torch, "non-torch memory"),
            cuda_graph_bytes=_size(cuda_graph_memory, "CUDA-graph memory"),
            kv_cache_memory=_size(kv_cache_memory, "KV-cache memory"),
            mxfp4_backend=mxfp4_backend,
            entrypoint=entrypoint,
        )
        answer: dict[str, int | float] = {}
        if for_ == "tp":
            best, p = smallest_tp(m, opts, facts)
            answer = {"smallest_tp": best}
        else:
            p = plan(m, opts, facts)
            if for_ == "max-model-len":
                answer = {"max_model_len_that_starts": p.max_model_len_that_starts}
            elif for_ == "concurrency":
                answer = {"max_concurrency": p.max_concurrency}
        if json_:
            echo_json({**p.to_json(), **answer})
            return
        _render(p)
        for k, v in answer.items():
            typer.echo(f"answer: {k} = {v:,}" if isinstance(v, int) else f"answer: {k} = {v:.2f}")
        if not p.starts:
            _remedies(m, opts, p)


def _line(name: str, exact: str, binary: str, formula: str) -> None:
    typer.echo(f"  {name:<22}  {exact:>18}  {binary:>12}  {formula}")


#: the serving options that change a setting (the others come from the model's header)
_FLAGS = {
    "budget": "--gpu or --budget",
    "kv_dtype": "--kv-dtype",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "block_size": "--block-size",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "max_num_seqs": "--max-num-seqs",
    "max_model_len": "--max-model-len",
    "non_torch_bytes": "--non-torch",
    "cuda_graph_bytes": "--cuda-graph-memory",
    "entrypoint": "--entrypoint",
}


def assumed_line(p: ServingPlan) -> str:
    """The first line: the settings not given as options, and which option changes each (the
    model's dtype and quantization: its header)."""
    parts = []
    for k, s in p.settings.items():
        if s.source == "given":
            continue
        flag = _FLAGS.get(k, "the model's header")
        value = format_bytes(s.value) if k == "budget" else s.value
        parts.append(f"{k} {value} ({flag})")
    return "assumed: " + "; ".join(parts) + "; all with their sources under settings"


def _render(p: ServingPlan) -> None:
    typer.echo(assumed_line(p))
    typer.echo(f"{p.model} on {p.engine}, per GPU (budget {format_bytes(p.budget_bytes)}):")
    for name in (
        "weights_bytes",
        "activation_peak_bytes",
        "non_torch_bytes",
        "cuda_graph_bytes",
        "kv_cache_bytes",
    ):
        v = getattr(p, name)
        binary = format_bytes(v) if v >= 0 else "-" + format_bytes(-v)
        _line(name, f"{v:,}", binary, p.formulas.get(name, ""))
    f = p.formulas
    _line("kv_bytes_per_token", f"{p.kv_bytes_per_token:,}", "", f.get("kv_bytes_per_token", ""))
    _line("kv_tokens", f"{p.kv_tokens:,}", "", f.get("kv_tokens", ""))
    _line("max_concurrency", f"{p.max_concurrency:.2f}", "", f.get("max_concurrency", ""))
    longest = f"{p.max_model_len_that_starts:,}"
    typer.echo(
        f"  starts: {'yes' if p.starts else 'no'}; the longest max_model_len that starts: {longest}"
    )
    typer.echo("settings:")
    for k, s in p.settings.items():
        typer.echo(f"  {k} = {s.value}  ({s.source})")
    for note in p.notes:
        typer.echo(f"note: {note}")


def _remedies(m: Model, opts: ServingOptions, p: ServingPlan) -> None:
    """What would make it start, each checked with the same rules (the style of `solve`)."""
    typer.echo("remedies:")
    if p.max_model_len_that_starts > 0:
        typer.echo(f"  --max-model-len {p.max_model_len_that_starts}")
    try:
        best, _ = smallest_tp(m, opts)
        typer.echo(f"  --tp {best}")
    except OptionError:
        pass
    if opts.kv_dtype != "fp8":
        q = plan(m, replace(opts, kv_dtype="fp8"))
        if q.starts:
            typer.echo(f"  --kv-dtype fp8 ({q.kv_tokens:,} KV tokens)")
