"""vLLM's budget (the V1 engine, v0.8 - v0.11), per GPU.

The rule (vllm/v1/worker/gpu_worker.py, ``Worker.determine_available_memory``, with
``vllm/utils.memory_profiling``)::

    requested   = total x gpu_memory_utilization      (total: torch.cuda.mem_get_info()[1])
    kv_cache    = requested - weights - activation_peak - non_torch [- cuda_graphs]

* ``weights``: what loading the model allocated ("Model loading took N GiB");
* ``activation_peak``: the torch peak of ``GPUModelRunner.profile_run``: a forward of
  ``max_num_batched_tokens`` tokens (chunked prefill; MoE layers route them), then the
  sampler over ``max_num_seqs`` sequences (``_dummy_sampler_run``);
* ``non_torch``: memory outside PyTorch's allocator that appeared since start-up (CUDA
  context growth, cuBLAS workspaces, NCCL and custom all-reduce buffers when tp > 1):
  only a runtime can measure it, so it is a named default (:data:`NON_TORCH_BYTES`,
  :data:`NON_TORCH_TP_BYTES`) from published logs;
* CUDA graphs are captured after the KV cache is allocated and live in the
  ``1 - gpu_memory_utilization`` headroom in these versions: 0 here unless given
  (:data:`CUDA_GRAPH_BYTES`).

Then the KV cache (vllm/v1/core/kv_cache_utils.py): each attention layer's page holds
``block_size`` tokens; one KV-cache group when every layer has the same kind (full
attention, or one sliding window): ``num_blocks = kv_cache // sum(page of each layer)``;
a hybrid model (sliding + full, Gemma-2/3, gpt-oss) is split into groups of equal size
(``_get_kv_cache_groups_uniform_page_size``): ``num_blocks = kv_cache // page //
group_size`` and the logged size is ``num_blocks // groups x block_size`` tokens.  The
engine refuses to start when one request of ``max_model_len`` tokens does not fit
(``check_enough_kv_cache_memory``).  Sources and measured figures: docs/serving.md.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import sympy

from symmem.errors import OptionError
from symmem.gpus import gpu as find_gpu
from symmem.precision import DTYPE_BYTES
from symmem.records import record
from symmem.serving.common import (
    AttnLayer,
    GiB,
    ModelFacts,
    Stage,
    checkpoint_format,
    forward_peak,
    kv_bytes,
    layout,
    stages,
    vocab_size,
)
from symmem.serving.result import (
    MXFP4_BACKENDS,
    ServingOptions,
    ServingPlan,
    Setting,
    StagePlan,
)

if TYPE_CHECKING:  # the API floor (Model) is above this package
    from symmem.model import Model

VERSION = "vLLM V1 engine (v0.8 - v0.11)"

#: CacheConfig.gpu_memory_utilization's default (vllm/config/cache.py)
GPU_MEMORY_UTILIZATION = 0.9
#: CacheConfig.DEFAULT_BLOCK_SIZE (vllm/config/cache.py): tokens per KV page on CUDA
BLOCK_SIZE = 16
#: vLLM's batch defaults (vllm/engine/arg_utils.py, ``EngineArgs._set_default_args`` in v0.11,
#: ``_set_default_args_v1`` before): (max_num_batched_tokens, max_num_seqs) by entry point
#: (:data:`~symmem.serving.result.ENTRYPOINTS`: the ``UsageContext``) and GPU.  A GPU of
#: :data:`BIG_GPU_BYTES` or more whose name does not contain "a100" is "big" (vLLM PR #17885:
#: the larger chunk cost an A100 throughput); v0.8.x tested the name for "h100" / "h200"
#: instead (docs/serving.md).  max_num_seqs does not depend on the entry point.
BIG_GPU_BYTES = 70 * GiB
BATCH_DEFAULTS = {
    "serve": {"big": (8192, 1024), "other": (2048, 256)},  # UsageContext.OPENAI_API_SERVER
    "llm": {"big": (16384, 1024), "other": (8192, 256)},  # UsageContext.LLM_CLASS
}
#: how each entry point is named in the plan's sources
ENTRYPOINT_NAMES = {"serve": "`vllm serve` (OPENAI_API_SERVER)", "llm": "the LLM class (LLM_CLASS)"}

#: non-torch memory of one GPU with tp = 1: the median of the published logs in
#: docs/serving.md (0.16, 0.16, 0.20, 0.35 GiB: vLLM PRs #12126, #13109, #14447, issue #10517)
NON_TORCH_BYTES = round(0.2 * GiB)
#: what tp > 1 adds on an NVLink machine (NCCL channels, NVLS and custom all-reduce buffers):
#: vLLM PR #10511 measured 1.79 GiB at tp = 1 and 3.58 GiB at tp = 2 on the same H100 host.
#: PCIe cards measure far less (0.20 GiB in PR #14447); give --non-torch to override.
NON_TORCH_TP_BYTES = round(1.79 * GiB)
#: CUDA-graph memory subtracted from the KV budget: none in the V1 versions modelled here
#: (graphs are captured after the KV cache is allocated, in the 1 - utilization headroom)
CUDA_GRAPH_BYTES = 0
#: bytes per logit the dummy sampler run holds at its peak, per sequence and vocabulary entry:
#: the logits in the model dtype plus fp32 copies (to(float32), softmax probs, the
#: exponential noise of random sampling: 3 x 4 bytes; vllm/v1/sample/sampler.py)
SAMPLER_FP32_COPIES = 3


@record
class Groups:
    """How vLLM groups a stage's attention layers into KV-cache groups."""

    #: pages of one block across the layers that share a block id (bytes)
    block_bytes: int
    #: the number of groups (1: one group of every layer)
    count: int
    #: (window, layers) of each group
    specs: tuple[tuple[int | None, int], ...]


def groups(attn: tuple[AttnLayer, ...], block: int) -> Groups:
    """vLLM's KV-cache groups (kv_cache_utils.get_kv_cache_groups) of a stage's layers."""
    kinds = Counter(a.window for a in attn)
    if len(kinds) <= 1:
        window = next(iter(kinds), None)
        return Groups(block * sum(a.bytes_per_token for a in attn), 1, ((window, len(attn)),))
    # hybrid: pages unified to the largest (unify_kv_cache_spec_page_size), groups of equal size
    page = block * max(a.bytes_per_token for a in attn)
    counts = list(kinds.values())
    size = min(counts)
    if max(counts) < size * 1.5:
        size = max(counts)
    specs = []
    for window, n in kinds.items():
        specs += [(window, size)] * (-(-n // size))
    return Groups(page * size, len(specs), tuple(specs))


def blocks_per_request(g: Groups, length: int, batched: int, block: int) -> int:
    """Blocks one request of ``length`` tokens needs (``max_memory_usage_bytes`` per group:
    a full-attention group every token, a sliding-window group ``window - 1 + batched``
    tokens and one block more)."""
    out = 0
    for window, _ in g.specs:
        if window is None:
            out += -(-length // block)
        else:
            out += -(-min(window - 1 + batched, length) // block) + 1
    return out


def batch_defaults(total: Any, a100: Any, entrypoint: str = "serve") -> tuple[sympy.Expr, ...]:
    """max_num_batched_tokens and max_num_seqs for ``entrypoint`` (:data:`BATCH_DEFAULTS`) as
    expressions of the GPU's total and ``a100`` (1 on an A100, else 0): one rule for the CLI
    (numbers) and the calculator page (symbols)."""
    big = sympy.And(sympy.Ge(total, BIG_GPU_BYTES), sympy.Eq(a100, 0))
    rows = BATCH_DEFAULTS[entrypoint]
    return tuple(sympy.Piecewise((rows["big"][i], big), (rows["other"][i], True)) for i in (0, 1))


def default_batch(total: int, gpu_name: str, entrypoint: str = "serve") -> tuple[int, int, str]:
    """vLLM's max_num_batched_tokens and max_num_seqs for ``entrypoint`` on this GPU
    (:data:`BATCH_DEFAULTS`)."""
    tokens, seqs = batch_defaults(total, int("a100" in gpu_name.lower()), entrypoint)
    big = (int(tokens), int(seqs)) == BATCH_DEFAULTS[entrypoint]["big"]
    why = "a GPU of 70 GiB or more, not an A100" if big else "a GPU under 70 GiB, or an A100"
    return (
        int(tokens),
        int(seqs),
        f"vLLM EngineArgs._set_default_args, {ENTRYPOINT_NAMES[entrypoint]} on {why}",
    )


def non_torch_bytes(tp: Any, nvlink: Any) -> sympy.Expr:
    """:data:`NON_TORCH_BYTES`, plus :data:`NON_TORCH_TP_BYTES` for tp > 1 on NVLink GPUs
    (``nvlink``: 1 or 0), as an expression (numbers in, a number out)."""
    extra = sympy.Piecewise((sympy.sympify(nvlink), sympy.Gt(tp, 1)), (0, True))
    return NON_TORCH_BYTES + NON_TORCH_TP_BYTES * extra


def non_torch_default(o: ServingOptions) -> tuple[int, str]:
    """:data:`NON_TORCH_BYTES`, plus :data:`NON_TORCH_TP_BYTES` for tp > 1 on NVLink GPUs."""
    nvlink = find_gpu(o.gpu).nvlink if o.gpu else o.budget is None
    value = int(non_torch_bytes(o.tp, int(bool(nvlink))))
    if value != NON_TORCH_BYTES:
        return value, "default: one GPU's + NVLink tp buffers (docs/serving.md)"
    return value, "default from published logs (docs/serving.md)"


def requested_bytes(total: Any, utilization: Any) -> sympy.Expr:
    """``total x gpu_memory_utilization``, whole bytes: the utilization is the decimal it is
    written as (0.9 is 9/10, not the nearest double), so the calculator page (exact
    rationals) gives the same bytes."""
    u = utilization
    if isinstance(u, float):
        u = Fraction(str(u))
    return sympy.floor(sympy.sympify(total) * sympy.sympify(u))


#: the longest max_model_len vLLM's start-up search tries (``_longest``)
LONGEST_SEARCHED = 2**24


def single_stage_terms(
    *,
    total: Any,
    utilization: Any,
    weights: Any,
    kv_bytes_per_token: Any,
    forward: Any,
    max_num_seqs: Any,
    max_num_batched_tokens: Any,
    vocab: int,
    dtype: str,
    non_torch: Any,
    cuda_graphs: Any,
    block: Any,
    max_model_len: Any,
) -> dict[str, sympy.Expr]:
    """The budget of :func:`plan` for one pipeline stage whose attention layers form one
    KV-cache group of full attention, as expressions of its inputs (numbers or symbols):
    the calculator page compiles them (docs/page.md); tests/test_page.py holds them equal to
    :func:`plan`.  ``max_concurrency`` is exact (the plan prints it as a float) and
    ``starts`` is 1 or 0."""
    requested = requested_bytes(total, utilization)
    sampler = sampler_peak(
        sympy.Min(max_num_seqs, max_num_batched_tokens),
        vocab,
        dtype,
    )
    act = sympy.Max(forward, sampler)
    kv = requested - weights - act - non_torch - cuda_graphs
    # one group (groups()): a block holds `block` tokens of every layer
    block_bytes = block * kv_bytes_per_token
    blocks = sympy.floor(sympy.Max(kv, 0) / block_bytes)
    # blocks_per_request: a full-attention group, every token
    need = sympy.ceiling(sympy.sympify(max_model_len) / block)
    return {
        "budget_bytes": sympy.sympify(total),
        "requested_bytes": requested,
        "weights_bytes": sympy.sympify(weights),
        "kv_bytes_per_token": sympy.sympify(kv_bytes_per_token),
        "activation_peak_bytes": act,
        "non_torch_bytes": sympy.sympify(non_torch),
        "cuda_graph_bytes": sympy.sympify(cuda_graphs),
        "kv_cache_bytes": kv,
        "kv_blocks": blocks,
        "kv_tokens": blocks * block,
        "max_concurrency": blocks / need,
        # _longest: n fits while ceil(n / block) <= blocks
        "max_model_len_that_starts": sympy.Min(blocks * block, LONGEST_SEARCHED),
        "starts": sympy.Piecewise((1, sympy.Ge(kv, need * block_bytes)), (0, True)),
    }


def mxfp4_backend(o: ServingOptions) -> tuple[str, str]:
    """vLLM's MXFP4 MoE kernel on this GPU (``get_mxfp4_backend``,
    vllm/model_executor/layers/quantization/mxfp4.py, read at commit 007d5005): FlashInfer on
    Blackwell (compute capability 10.x), Triton (triton_kernels) on 9.0 <= capability < 11.0,
    Marlin (weight-only FP4) elsewhere.  vLLM 0.10.1 chose Marlin on an H100 as well (issue
    #23278's log): give ``mxfp4_backend`` for such a version."""
    if o.mxfp4_backend is not None:
        return o.mxfp4_backend, "given"
    cc = find_gpu(o.gpu or "h100-80gb").compute_capability
    if cc is None:
        return "marlin", "vLLM get_mxfp4_backend: the GPU's compute capability is not catalogued"
    if cc[0] == 10:
        return "flashinfer", f"vLLM get_mxfp4_backend: compute capability {cc[0]}.{cc[1]}"
    if (9, 0) <= cc < (11, 0):
        return "triton", f"vLLM get_mxfp4_backend: compute capability {cc[0]}.{cc[1]}"
    return "marlin", f"vLLM get_mxfp4_backend: compute capability {cc[0]}.{cc[1]} (no FP4 units)"


def sampler_peak(seqs: int, vocab: int, dtype: str) -> int:
    """The dummy sampler run's peak: ``seqs x vocab`` logits in the model dtype plus
    :data:`SAMPLER_FP32_COPIES` fp32 copies."""
    return seqs * vocab * (int(DTYPE_BYTES[dtype]) + 4 * SAMPLER_FP32_COPIES)


def plan(model: Model, facts: ModelFacts, o: ServingOptions) -> ServingPlan:
    """vLLM's budget for ``model`` under ``o`` (docs/serving.md)."""
    settings: dict[str, Setting] = {}
    total, gpu_name = budget(o, settings)
    dtype, quant, group = checkpoint_format(facts, o, settings)
    kv_dtype = kv_bytes(o.kv_dtype, dtype)
    settings["kv_dtype"] = Setting(
        kv_dtype, "given" if o.kv_dtype != "auto" else "auto: the model's dtype"
    )
    gmu = (
        o.gpu_memory_utilization if o.gpu_memory_utilization is not None else GPU_MEMORY_UTILIZATION
    )
    settings["gpu_memory_utilization"] = Setting(
        gmu, "given" if o.gpu_memory_utilization is not None else "vLLM CacheConfig default"
    )
    block = o.block_size or BLOCK_SIZE
    settings["block_size"] = Setting(
        block, "given" if o.block_size else "vLLM CacheConfig.DEFAULT_BLOCK_SIZE"
    )
    settings["entrypoint"] = Setting(
        o.entrypoint,
        "given"
        if o.entrypoint != "serve"
        else "default: `vllm serve`, the OpenAI API server (UsageContext.OPENAI_API_SERVER)",
    )
    d_tokens, d_seqs, why = default_batch(total, gpu_name, o.entrypoint)
    batched = o.max_num_batched_tokens or d_tokens
    seqs = o.max_num_seqs or d_seqs
    settings["max_num_batched_tokens"] = Setting(
        batched, "given" if o.max_num_batched_tokens else why
    )
    settings["max_num_seqs"] = Setting(seqs, "given" if o.max_num_seqs else why)
    max_len = o.max_model_len or facts.max_len
    if max_len is None:
        raise OptionError(
            "the model's context length is unknown (no config.json): give --max-model-len"
        )
    settings["max_model_len"] = Setting(
        max_len, "given" if o.max_model_len else f"the model's positions ({facts.source})"
    )
    settings["tp"], settings["pp"] = Setting(o.tp, "given"), Setting(o.pp, "given")

    pad = None
    if quant == "mxfp4":
        backend, why_b = mxfp4_backend(o)
        settings["mxfp4_backend"] = Setting(backend, why_b)
        pad = MXFP4_BACKENDS[backend]
    lay = layout(
        model,
        tp=o.tp,
        weight_dtype=dtype,
        kv_dtype=kv_dtype,
        quant=quant,
        group=group,
        expert_pad=pad,
    )
    parts = stages(lay, o.pp)
    forward = forward_peak(model, tokens=batched, tp=o.tp, dtype=dtype)
    sampler = sampler_peak(min(seqs, batched), vocab_size(model), dtype)
    non_torch = o.non_torch_bytes
    if non_torch is None:
        non_torch, why_nt = non_torch_default(o)
        settings["non_torch_bytes"] = Setting(non_torch, why_nt)
    else:
        settings["non_torch_bytes"] = Setting(non_torch, "given")
    graphs = (
        0
        if o.enforce_eager
        else (o.cuda_graph_bytes if o.cuda_graph_bytes is not None else CUDA_GRAPH_BYTES)
    )
    settings["cuda_graph_bytes"] = Setting(
        graphs,
        "--enforce-eager: no graphs"
        if o.enforce_eager
        else (
            "given" if o.cuda_graph_bytes is not None else "not subtracted by vLLM V1 v0.8-v0.11"
        ),
    )
    requested = int(requested_bytes(total, gmu))
    stage_plans, limits = [], []
    for st in parts:
        act = max(forward, sampler) if st.last else forward
        kv = requested - st.weights - act - non_torch - graphs
        if o.kv_cache_memory is not None:
            kv = o.kv_cache_memory
        g = groups(st.attention, block)
        nb = max(kv, 0) // g.block_bytes if g.block_bytes else 0
        tokens = nb // g.count * block
        stage_plans.append(
            StagePlan(st.weights, st.kv_bytes_per_token, act, kv, nb, tokens, len(st.attention))
        )
        limits.append((nb, st, g, kv))
    # every stage gets the smallest stage's block count (get_kv_cache_configs)
    idx = min(range(len(limits)), key=lambda i: (limits[i][0], i))
    nb, st, g, _ = limits[idx]
    sp = stage_plans[idx]
    need = blocks_per_request(g, max_len, batched, block)
    concurrency = nb / need if need else 0.0
    longest = _longest(limits, batched, block)
    starts = all(
        kv >= blocks_per_request(gg, max_len, batched, block) * gg.block_bytes
        for _, _, gg, kv in limits
    )
    notes = []
    if not starts:
        notes.append(
            f"vLLM refuses to start: one request of {max_len:,} tokens needs more KV cache "
            f"than the {max(sp.kv_cache_bytes, 0) / GiB:.2f} GiB left (the longest that "
            f"starts: {longest:,} tokens)"
        )
    if g.count > 1:
        notes.append(
            f"hybrid KV cache: {g.count} groups of {g.specs[0][1]} layers share each block id "
            "(vLLM _get_kv_cache_groups_uniform_page_size)"
        )
    fwd = f"forward of {batched:,} tokens"
    act_text = (
        f"max({fwd}, sampler over {min(seqs, batched):,} sequences) = max({forward:,}, {sampler:,})"
        if st.last
        else fwd
    )
    formulas = {
        "requested": f"total x gpu_memory_utilization = {total:,} x {gmu}",
        "weights_bytes": "this GPU's stage as loaded: tp-split matrices, vocab-parallel embedding "
        "and head, replicated norms and routers, the quantized layout",
        "kv_bytes_per_token": "sum over the stage's attention layers of 2 x max(kv_heads / tp, 1) "
        "x head_dim x bytes (MLA: kv_lora_rank + qk_rope_head_dim, not split)",
        "activation_peak_bytes": act_text,
        "non_torch_bytes": "CUDA context growth, cuBLAS, NCCL / custom all-reduce (tp > 1): "
        "a runtime measurement, default from published logs",
        "cuda_graph_bytes": "0: captured after the KV cache, in the headroom",
        "kv_cache_bytes": "requested - weights - activation_peak - non_torch - cuda_graphs",
        "kv_tokens": f"floor(kv_cache / ({block} x page bytes of a group's layers)) "
        f"// groups x {block}",
        "max_concurrency": f"kv_blocks / blocks one request of {max_len:,} tokens needs",
    }
    return ServingPlan(
        engine="vllm",
        model=model.name,
        budget_bytes=total,
        requested_bytes=requested,
        weights_bytes=sp.weights_bytes,
        kv_bytes_per_token=sp.kv_bytes_per_token,
        activation_peak_bytes=sp.activation_peak_bytes,
        non_torch_bytes=non_torch,
        cuda_graph_bytes=graphs,
        kv_cache_bytes=sp.kv_cache_bytes,
        kv_blocks=nb,
        kv_tokens=nb // g.count * block,
        max_concurrency=concurrency,
        max_model_len=max_len,
        max_model_len_that_starts=longest,
        starts=starts,
        settings=settings,
        formulas=formulas,
        stages=tuple(stage_plans),
        notes=tuple(notes),
    )


def _longest(limits: list[tuple[int, Stage, Groups, int]], batched: int, block: int) -> int:
    """The largest max_model_len whose one request fits on every stage (binary search, as
    vLLM's ``_estimate_max_model_len_from_groups``), up to 2**24 tokens."""

    def fits(n: int) -> bool:
        return all(
            kv >= blocks_per_request(g, n, batched, block) * g.block_bytes for _, _, g, kv in limits
        )

    if not fits(1):
        return 0
    lo, hi = 1, LONGEST_SEARCHED
    if fits(hi):
        return hi
    while lo < hi - 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def budget(o: ServingOptions, settings: dict[str, Setting]) -> tuple[int, str]:
    """One GPU's total as CUDA reports it, and the GPU's name (for the engine's defaults)."""
    if o.budget is not None:
        settings["budget"] = Setting(o.budget, "given (--budget)")
        return o.budget, find_gpu(o.gpu).name if o.gpu else ""
    g = find_gpu(o.gpu or "h100-80gb")
    src = g.cuda_source or (
        "nvidia-smi's total (no CUDA total catalogued)" if g.reported_bytes else "the nominal DRAM"
    )
    settings["budget"] = Setting(
        g.cuda_total_bytes, f"{g.key}: {src}" + ("" if o.gpu else " (default GPU)")
    )
    return g.cuda_total_bytes, g.name
