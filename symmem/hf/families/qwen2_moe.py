"""Qwen2-MoE (``Qwen2MoeForCausalLM``): routed experts plus one gated shared expert."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, FromConfig, sparse_moe_ffn
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """MoE layers (``decoder_sparse_step``, ``mlp_only_layers``) and dense ones, with one gated
    shared expert (Qwen2MoeSparseMoeBlock)."""
    e = c.int("num_experts", 60, minimum=0)
    return sparse_moe_ffn(
        c, w, n, experts=e, dense_width=5632, expert_width=1408, per_token=4, shared_width=5632
    )


QWEN2_MOE = register("qwen2_moe")(
    DecoderSpec(
        hf_class="Qwen2MoeForCausalLM",
        ffn=experts,
        kv_heads=16,
        qkv_bias=FromConfig("qkv_bias", True),
        out_bias=False,
        windows="layer_types",
        header_options=("active_embeddings = count",),
    )
)
