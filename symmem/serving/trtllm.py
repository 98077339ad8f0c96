"""TensorRT-LLM's budget, per GPU (the PyTorch / executor runtime: ``KvCacheConfig``,
tensorrt_llm/llmapi/llm_args.py; tensorrt_llm/_torch/pyexecutor/_util.py
``KvCacheCreator``).

TensorRT-LLM gives the KV cache a fraction of the memory *free* once the weights are
loaded and a warm-up forward of ``max_num_tokens`` tokens has run::

    kv_cache  = free_gpu_memory_fraction x (total - weights - activation_peak - non_torch)
    kv_tokens = kv_cache // (tokens_per_block x page bytes) x tokens_per_block

``free_gpu_memory_fraction`` defaults to 0.9, ``tokens_per_block`` to 32, ``max_num_tokens``
to 8192 (llm_args.py / BuildConfig).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symmem.errors import OptionError
from symmem.serving.common import (
    ModelFacts,
    checkpoint_format,
    forward_peak,
    kv_bytes,
    layout,
    stages,
)
from symmem.serving.result import ServingOptions, ServingPlan, Setting, StagePlan
from symmem.serving.vllm import budget, non_torch_default

if TYPE_CHECKING:  # the API floor (Model) is above this package
    from symmem.model import Model

VERSION = "TensorRT-LLM 0.2x (PyTorch backend)"
FREE_GPU_MEMORY_FRACTION = 0.9
TOKENS_PER_BLOCK = 32
MAX_NUM_TOKENS = 8192


def plan(model: Model, facts: ModelFacts, o: ServingOptions) -> ServingPlan:
    settings: dict[str, Setting] = {}
    total, _ = budget(o, settings)
    dtype, quant, group = checkpoint_format(facts, o, settings)
    kv_dtype = kv_bytes(o.kv_dtype, dtype)
    frac = o.gpu_memory_utilization or FREE_GPU_MEMORY_FRACTION
    settings["free_gpu_memory_fraction"] = Setting(
        frac,
        "given (--gpu-memory-utilization)" if o.gpu_memory_utilization else "KvCacheConfig default",
    )
    block = o.block_size or TOKENS_PER_BLOCK
    settings["tokens_per_block"] = Setting(
        block, "given" if o.block_size else "KvCacheConfig default"
    )
    tokens_fwd = o.max_num_batched_tokens or MAX_NUM_TOKENS
    settings["max_num_tokens"] = Setting(
        tokens_fwd, "given" if o.max_num_batched_tokens else "default"
    )
    max_len = o.max_model_len or facts.max_len
    if max_len is None:
        raise OptionError(
            "the model's context length is unknown (no config.json): give --max-model-len"
        )
    settings["max_model_len"] = Setting(
        max_len, "given" if o.max_model_len else f"the model's positions ({facts.source})"
    )
    lay = layout(model, tp=o.tp, weight_dtype=dtype, kv_dtype=kv_dtype, quant=quant, group=group)
    parts = stages(lay, o.pp)
    act = forward_peak(model, tokens=tokens_fwd, tp=o.tp, dtype=dtype)
    non_torch = o.non_torch_bytes
    if non_torch is None:
        non_torch, _ = non_torch_default(o)
    plans = []
    for st in parts:
        free = total - st.weights - act - non_torch
        kv = int(frac * free)
        page = block * st.kv_bytes_per_token
        nb = max(kv, 0) // page if page else 0
        plans.append(
            StagePlan(st.weights, st.kv_bytes_per_token, act, kv, nb, nb * block, len(st.attention))
        )
    sp = min(plans, key=lambda p: p.kv_tokens)
    need = -(-max_len // block)
    return ServingPlan(
        engine="trtllm",
        model=model.name,
        budget_bytes=total,
        requested_bytes=total,
        weights_bytes=sp.weights_bytes,
        kv_bytes_per_token=sp.kv_bytes_per_token,
        activation_peak_bytes=act,
        non_torch_bytes=non_torch,
        cuda_graph_bytes=0,
        kv_cache_bytes=sp.kv_cache_bytes,
        kv_blocks=sp.kv_blocks,
        kv_tokens=sp.kv_tokens,
        max_concurrency=sp.kv_blocks / need,
        max_model_len=max_len,
        max_model_len_that_starts=sp.kv_tokens,
        starts=sp.kv_blocks >= need,
        settings=settings,
        formulas={
            "kv_cache_bytes": f"{frac} (free_gpu_memory_fraction) x "
            "(total - weights - activation_peak - non_torch)",
            "kv_tokens": f"kv_cache // ({block} x page bytes) x {block}",
        },
        stages=tuple(plans),
        notes=(),
    )
