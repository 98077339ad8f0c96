"""SGLang's budget, per GPU (python/sglang/srt/model_executor/model_runner.py,
``ModelRunner.profile_max_num_token``; server_args.py for the defaults).

SGLang leaves a fraction of the GPU static: the weights and the KV pool fill
``total x mem_fraction_static``; activations and CUDA graphs live in the rest::

    rest      = free memory after loading the weights - total x (1 - mem_fraction_static)
              = total x mem_fraction_static - weights - non_torch
    kv_tokens = rest // cell_size        (cell_size: KV bytes of one token over this GPU's layers)

``mem_fraction_static`` defaults by tp (server_args.py, SGLang v0.4): 0.88 at tp 1, 0.87 at
tp 2, 0.85 at 4, 0.81 at 8, 0.79 at 16 and more.  Its pages hold one token (``page_size`` 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symmem.errors import OptionError
from symmem.serving.common import ModelFacts, checkpoint_format, kv_bytes, layout, stages
from symmem.serving.result import ServingOptions, ServingPlan, Setting, StagePlan
from symmem.serving.vllm import budget, non_torch_default

if TYPE_CHECKING:  # the API floor (Model) is above this package
    from symmem.model import Model

VERSION = "SGLang v0.4"
#: server_args.py: mem_fraction_static by tensor-parallel size (tp >= key)
MEM_FRACTION_STATIC = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))
PAGE_SIZE = 1


def mem_fraction_static(tp: int) -> float:
    return next(f for at_least, f in MEM_FRACTION_STATIC if tp >= at_least)


def plan(model: Model, facts: ModelFacts, o: ServingOptions) -> ServingPlan:
    settings: dict[str, Setting] = {}
    total, _ = budget(o, settings)
    dtype, quant, group = checkpoint_format(facts, o, settings)
    kv_dtype = kv_bytes(o.kv_dtype, dtype)
    frac = o.gpu_memory_utilization or mem_fraction_static(o.tp)
    settings["mem_fraction_static"] = Setting(
        frac,
        "given (--gpu-memory-utilization)"
        if o.gpu_memory_utilization
        else "SGLang server_args default by tp",
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
    non_torch = o.non_torch_bytes
    if non_torch is None:
        non_torch, _ = non_torch_default(o)
    requested = int(total * frac)
    plans = []
    for st in parts:
        kv = requested - st.weights - non_torch
        cell = st.kv_bytes_per_token
        tokens = max(kv, 0) // cell if cell else 0
        plans.append(
            StagePlan(st.weights, cell, 0, kv, tokens // PAGE_SIZE, tokens, len(st.attention))
        )
    sp = min(plans, key=lambda p: p.kv_tokens)
    return ServingPlan(
        engine="sglang",
        model=model.name,
        budget_bytes=total,
        requested_bytes=requested,
        weights_bytes=sp.weights_bytes,
        kv_bytes_per_token=sp.kv_bytes_per_token,
        activation_peak_bytes=0,
        non_torch_bytes=non_torch,
        cuda_graph_bytes=0,
        kv_cache_bytes=sp.kv_cache_bytes,
        kv_blocks=sp.kv_blocks,
        kv_tokens=sp.kv_tokens,
        max_concurrency=sp.kv_tokens / max_len,
        max_model_len=max_len,
        max_model_len_that_starts=sp.kv_tokens,
        starts=sp.kv_tokens >= max_len,
        settings=settings,
        formulas={
            "kv_cache_bytes": "total x mem_fraction_static - weights - non_torch "
            "(activations and CUDA graphs live in the rest)",
            "kv_tokens": "kv_cache // cell_size (page size 1)",
        },
        stages=tuple(plans),
        notes=("activations and CUDA graphs are not subtracted: they use 1 - mem_fraction_static",),
    )
