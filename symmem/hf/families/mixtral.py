"""Mixtral (``MixtralForCausalLM``): Mistral's attention, a sparse MoE in every layer."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """``block_sparse_moe``: a bias-free router and gated experts."""
    w.sym("intermediate_size", c.int("intermediate_size"), "width of each expert")
    e = w.sym("num_local_experts", c.int("num_local_experts", 8))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 2))

    def render(act: str, bias: bool) -> str:
        return call("moe", "block_sparse_moe", "hidden_size", "intermediate_size", e, k, act=act)

    return FeedForward(["moe"] * n, {"moe": render})


MIXTRAL = register("mixtral")(
    DecoderSpec(
        hf_class="MixtralForCausalLM",
        ffn=experts,
        kv_heads=8,
        qkv_bias=False,
        out_bias=False,
        windows="all",
        header_options=("active_embeddings = count",),
    )
)
