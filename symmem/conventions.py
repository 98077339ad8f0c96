"""Other tools' memory estimators, reproduced to the byte as named conventions.

symmem's own figures come from the layer graph (docs/memory.md).  Frameworks ship
their own rules of thumb, which users quote; these functions compute exactly what
those tools print, from the same arguments, so that both can be shown side by side
and the difference explained (docs/memory.md, "Conventions of other tools").  They
are ports, in exact rational arithmetic, of:

* Megatron-LM ``megatron/training/theoretical_memory_usage.py``
  (``compute_weight_and_optimizer_memory``, ``compute_activation_memory``,
  ``compute_activation_memory_without_sp``; NVIDIA/Megatron-LM at
  d98e8a64ddf34856e74b24714e3bedb2f5a39553);
* DeepSpeed ``deepspeed/runtime/zero/stage_1_and_2.py``
  ``estimate_zero2_model_states_mem_needs`` and ``deepspeed/runtime/zero/stage3.py``
  ``estimate_zero3_model_states_mem_needs`` (deepspeedai/DeepSpeed at
  edaa7221267243c7be7fb49c5d5f5c4fb97b4641), which the ``..._all_cold`` functions print.
"""

from __future__ import annotations

import math
from fractions import Fraction

from symmem.errors import OptionError
from symmem.records import record


@record
class MegatronArgs:
    """The Megatron-LM arguments ``theoretical_memory_usage.py`` reads (its names, its defaults
    where Megatron has one)."""

    hidden_size: int
    num_attention_heads: int
    num_layers: int
    ffn_hidden_size: int
    padded_vocab_size: int
    seq_length: int
    micro_batch_size: int = 1
    kv_channels: int | None = None
    num_query_groups: int | None = None
    swiglu: bool = False
    normalization: str = "LayerNorm"
    untie_embeddings_and_output_weights: bool = False
    num_experts: int | None = None
    moe_ffn_hidden_size: int | None = None
    moe_router_topk: int = 2
    moe_layer_freq: int | tuple[int, ...] = 1
    moe_shared_expert_intermediate_size: int | None = None
    add_bias_linear: bool = True
    mtp_num_layers: int | None = None
    tensor_model_parallel_size: int = 1
    pipeline_model_parallel_size: int = 1
    virtual_pipeline_model_parallel_size: int | None = None
    data_parallel_size: int = 1
    expert_tensor_parallel_size: int | None = None
    expert_model_parallel_size: int = 1
    use_distributed_optimizer: bool = False
    sequence_parallel: bool = False
    recompute_granularity: str | None = None

    @property
    def world_size(self) -> int:
        # Megatron: world = tp x pp x dp (x cp, 1 here)
        return (
            self.tensor_model_parallel_size
            * self.pipeline_model_parallel_size
            * self.data_parallel_size
        )


def megatron_weight_and_optimizer(a: MegatronArgs) -> Fraction:
    """``compute_weight_and_optimizer_memory``: bytes of weights, gradients and optimizer on the
    most loaded pipeline shard (18 bytes per parameter, 6 + 12 / dp with the distributed
    optimizer).  Multi-latent attention and latent MoE are not ported."""
    F = Fraction
    h, heads = a.hidden_size, a.num_attention_heads
    kv_channels = a.kv_channels if a.kv_channels is not None else h // heads
    groups = a.num_query_groups if a.num_query_groups is not None else heads
    query_ratio = F(kv_channels * heads, h)
    num_experts = 1 if a.num_experts is None else a.num_experts
    gated = F(3, 2) if a.swiglu else F(1)
    shared_ffn = a.moe_shared_expert_intermediate_size or 0
    if a.num_experts is not None:
        if isinstance(a.moe_layer_freq, int):
            pattern = [1 if i % a.moe_layer_freq == 0 else 0 for i in range(a.num_layers)]
        else:
            pattern = list(a.moe_layer_freq)
        n_moe = sum(pattern)
        n_dense = a.num_layers - n_moe
        moe_ffn = a.moe_ffn_hidden_size or 0
    else:
        pattern, n_moe, n_dense, moe_ffn = [0] * a.num_layers, 0, a.num_layers, 0
    mtp_moe = pattern[-1] * (a.mtp_num_layers or 0)
    mtp_dense = (1 - pattern[-1]) * (a.mtp_num_layers or 0)
    norm = 1 if a.normalization == "RMSNorm" else 2
    attention = 2 * h * h * ((1 + F(groups, heads)) * query_ratio)
    embedding = h * a.padded_vocab_size
    final_norm = norm * h
    dense_mlp = 2 * h * a.ffn_hidden_size * gated
    shared = 2 * h * shared_ffn * gated
    routed = 2 * h * moe_ffn * num_experts * gated
    layernorm = 2 * h * norm
    router = (h * num_experts + (num_experts if a.add_bias_linear else 0)) if a.num_experts else 0
    etp = (
        a.expert_tensor_parallel_size
        if a.expert_tensor_parallel_size is not None
        else a.tensor_model_parallel_size
    )
    ep, pp, tp = (
        a.expert_model_parallel_size,
        a.pipeline_model_parallel_size,
        a.tensor_model_parallel_size,
    )
    edp = a.world_size // (etp * ep * pp)
    tp_block = (attention + dense_mlp) * n_dense + (attention + shared) * n_moe
    replicated_block = layernorm * n_dense + (layernorm + router) * n_moe + final_norm
    expert_block = routed * n_moe
    tp_mtp = (attention + dense_mlp) * mtp_dense + (attention + shared) * mtp_moe
    replicated_mtp = layernorm * mtp_dense + (layernorm + router) * mtp_moe
    expert_mtp = routed * mtp_moe
    tp_shard = (F(tp_block, pp) + tp_mtp + embedding) / tp
    replicated_shard = F(replicated_block, pp) + replicated_mtp
    expert_shard = (F(expert_block, pp) + expert_mtp) / (etp * ep)
    if a.untie_embeddings_and_output_weights and pp == 1:
        tp_shard += F(embedding, tp)

    def per_parameter(dp: int) -> Fraction:
        return F(18) if not a.use_distributed_optimizer else 6 + F(12, dp)

    return (tp_shard + replicated_shard) * per_parameter(
        a.data_parallel_size
    ) + expert_shard * per_parameter(edp)


def megatron_activations(a: MegatronArgs, num_microbatches: int | None = None) -> Fraction:
    """The activation bytes of the first pipeline stage as ``report_theoretical_memory`` picks
    them: ``compute_activation_memory`` (Korthikanti et al. 2022 Table 2, sbh(18 + 4 f / h) per
    layer over tp) with sequence parallelism and selective recompute, else
    ``compute_activation_memory_without_sp`` (sbh(10 + 24 / tp) per layer, times 1.05)."""
    F = Fraction
    s, b, h = a.seq_length, a.micro_batch_size, a.hidden_size
    pp, tp, vp = (
        a.pipeline_model_parallel_size,
        a.tensor_model_parallel_size,
        a.virtual_pipeline_model_parallel_size,
    )
    with_sp = a.sequence_parallel and a.recompute_granularity == "selective"
    if with_sp:
        act = s * b * h * (18 + 4 * F(a.ffn_hidden_size, h)) * a.num_layers
    else:
        act = s * b * h * (10 + F(24, tp)) * a.num_layers
    act += 8 * s * b * pp + s * b * h * pp
    if vp is not None:
        act *= 1 + F(pp - 1, pp * vp)
    if vp is None and pp > 1 and num_microbatches is not None:
        act *= min(F(1), F(num_microbatches, pp))
    if pp == 1:
        if with_sp:
            act += s * b * h * 4 * (1 + F(a.padded_vocab_size, h))
        else:
            act += (F(s * b * a.padded_vocab_size, tp) + s * b * h) * 2
    return act / tp if with_sp else act * F(105, 100)


def megatron_in_flight(a: MegatronArgs, num_microbatches: int | None = None) -> int:
    """The in-flight micro-batches Megatron prints: ceil(pp (1 + (pp - 1) / (pp vp))) when
    interleaved, min(m, pp) otherwise."""
    pp, vp = a.pipeline_model_parallel_size, a.virtual_pipeline_model_parallel_size
    if vp is not None:
        return math.ceil(pp * (1 + Fraction(pp - 1, pp * vp)))
    return pp if num_microbatches is None else min(num_microbatches, pp)


def deepspeed_zero2(
    total_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int]:
    """DeepSpeed's ``estimate_zero2_model_states_mem_needs``: (bytes per CPU node, bytes per GPU)
    of model states under ZeRO-2, with or without optimizer offload to the CPU.  DeepSpeed's
    own float arithmetic, line for line, so that the truncations are the same."""
    total_gpus = num_nodes * num_gpus_per_node
    if cpu_offload:
        gpu_mem = 2 * total_params
        cpu_mem = total_params * max(4 * total_gpus, 16) * additional_buffer_factor
    else:
        gpu_mem = 2 * total_params + int(18 * total_params / total_gpus)
        cpu_mem = total_params * 4 * num_gpus_per_node * additional_buffer_factor
    return int(cpu_mem), int(gpu_mem)


def deepspeed_zero3(
    total_params: int,
    largest_layer_params: int,
    num_gpus_per_node: int = 1,
    num_nodes: int = 1,
    cpu_offload: bool = True,
    cpu_offload_params: bool = True,
    zero_init: bool = True,
    additional_buffer_factor: float = 1.5,
) -> tuple[int, int, int]:
    """DeepSpeed's ``estimate_zero3_model_states_mem_needs``: (bytes per CPU node, bytes per GPU,
    the largest layer's 4 bytes per parameter) under ZeRO-3, in DeepSpeed's float arithmetic."""
    if largest_layer_params < 0 or total_params < 0:
        raise OptionError("parameter counts must be >= 0")
    total_gpus = num_nodes * num_gpus_per_node
    gpus_factor = 1 / num_nodes
    largest = 4 * largest_layer_params
    buf = additional_buffer_factor
    gpu_mem: float
    if cpu_offload:
        if cpu_offload_params:
            gpu_mem = largest
            per = 18 * gpus_factor if zero_init else max(4 * num_gpus_per_node, 18 * gpus_factor)
        else:
            gpu_mem = largest + int(2 * total_params / total_gpus)
            per = 16 * gpus_factor if zero_init else max(4 * num_gpus_per_node, 16 * gpus_factor)
        cpu_mem = total_params * per * buf
    else:
        gpu_mem = largest + int(18 * total_params / total_gpus)
        cpu_mem = (
            largest_layer_params * 4 * num_gpus_per_node * buf
            if zero_init
            else total_params * 4 * num_gpus_per_node * buf
        )
    return int(cpu_mem), int(gpu_mem), largest
