"""Phi-3.5-MoE (``PhimoeForCausalLM``): LayerNorm, 16 gated experts with a bias-free router,
an LM head with a bias."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, FromConfig, Layout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    w.sym("intermediate_size", c.int("intermediate_size"), "width of each expert")
    e = w.sym("num_local_experts", c.int("num_local_experts", 16))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 2))

    def render(act: str, bias: bool) -> str:
        return call("moe", "mlp", "hidden_size", "intermediate_size", e, k, act=act)

    return FeedForward(["moe"] * n, {"moe": render})


PHIMOE = register("phimoe")(
    DecoderSpec(
        hf_class="PhimoeForCausalLM",
        ffn=experts,
        kv_heads=8,
        windows="all",
        head_bias=FromConfig("lm_head_bias", False),
        header_options=("active_embeddings = count",),
        layout=Layout(norm="layernorm"),
    )
)
