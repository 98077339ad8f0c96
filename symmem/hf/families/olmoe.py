"""OLMoE (``OlmoeForCausalLM``): Llama's pre-norm layers, q/k RMSNorm over the whole projection,
a sparse MoE (no shared expert) in every layer."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """``mlp``: a bias-free router (gate) and ``num_experts`` gated experts."""
    w.sym("intermediate_size", c.int("intermediate_size"), "width of each expert")
    e = w.sym("num_experts", c.int("num_experts", 64))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 8))

    def render(act: str, bias: bool) -> str:
        return call("moe", "mlp", "hidden_size", "intermediate_size", e, k, act=act)

    return FeedForward(["moe"] * n, {"moe": render})


OLMOE = register("olmoe")(
    DecoderSpec(
        hf_class="OlmoeForCausalLM",
        ffn=experts,
        qk_norm=True,
        qk_norm_scope="full",
        header_options=("active_embeddings = count",),
    )
)
