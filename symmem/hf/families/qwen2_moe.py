"""Qwen2-MoE (``Qwen2MoeForCausalLM``): routed experts plus one gated shared expert."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, FromConfig, Statement
from symmem.hf.fields import sparse_layers
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """MoE layers (``decoder_sparse_step``, ``mlp_only_layers``) and dense ones."""
    e = c.int("num_experts", 60, minimum=0)
    kinds = sparse_layers(c, n, e > 0)
    statements: dict[str, Statement] = {}
    if "dense" in kinds:
        w.sym("intermediate_size", c.int("intermediate_size", 5632), "dense (mlp_only) layers")

        def dense(act: str, bias: bool) -> str:
            return call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)

        statements["dense"] = dense
    if "moe" in kinds:
        w.sym(
            "moe_intermediate_size",
            c.int("moe_intermediate_size", 1408),
            "width of each routed expert",
        )
        w.sym("num_experts", e)
        w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 4))
        shared = c.int("shared_expert_intermediate_size", 5632, minimum=0)
        if shared:
            w.sym(
                "shared_expert_intermediate_size", shared, "one shared expert, with a sigmoid gate"
            )

        # Qwen2MoeSparseMoeBlock always builds shared_expert_gate (1 x d), even with a
        # 0-wide shared expert
        def moe(act: str, bias: bool) -> str:
            return call(
                "moe",
                "mlp",
                "hidden_size",
                "moe_intermediate_size",
                "num_experts",
                "num_experts_per_tok",
                n_shared=1 if shared else None,
                d_shared="shared_expert_intermediate_size" if shared else None,
                act=act,
                shared_gate=True,
            )

        statements["moe"] = moe
    return FeedForward(kinds, statements)


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
