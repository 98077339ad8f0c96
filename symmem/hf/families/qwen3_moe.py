"""Qwen3-MoE (``Qwen3MoeForCausalLM``): Qwen3's attention, routed experts without a shared one."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, Statement
from symmem.hf.fields import sparse_layers
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """MoE layers as Qwen2-MoE's (``num_experts``, or ``num_local_experts``), no shared expert."""
    key = "num_experts" if c.has("num_experts") else "num_local_experts"
    e = c.int(key, 128, minimum=0)
    kinds = sparse_layers(c, n, e > 0)
    statements: dict[str, Statement] = {}
    if "dense" in kinds:
        w.sym("intermediate_size", c.int("intermediate_size", 6144), "dense (mlp_only) layers")

        def dense(act: str, bias: bool) -> str:
            return call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)

        statements["dense"] = dense
    if "moe" in kinds:
        w.sym(
            "moe_intermediate_size",
            c.int("moe_intermediate_size", 768),
            "width of each routed expert",
        )
        w.sym("num_experts", e)
        w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 8))

        def moe(act: str, bias: bool) -> str:
            return call(
                "moe",
                "mlp",
                "hidden_size",
                "moe_intermediate_size",
                "num_experts",
                "num_experts_per_tok",
                act=act,
            )

        statements["moe"] = moe
    return FeedForward(kinds, statements)


QWEN3_MOE = register("qwen3_moe")(
    DecoderSpec(
        hf_class="Qwen3MoeForCausalLM",
        ffn=experts,
        kv_heads=4,
        qk_norm=True,
        windows="qwen3_moe",
        header_options=("active_embeddings = count",),
    )
)
