"""GLM-4 (``GlmForCausalLM``, THUDM's glm-4-9b in transformers' format) and GLM-4-0414
(``Glm4ForCausalLM``: norms also after attention and after the MLP): biased q/k/v,
partial rotary embeddings (no parameters)."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig, Layout
from symmem.hf.registry import register

GLM = register("glm")(
    DecoderSpec(
        hf_class="GlmForCausalLM",
        kv_heads=2,
        head_dim=128,
        qkv_bias=FromConfig("attention_bias", True),
        out_bias=False,
        notes=("GLM fuses gate and up (gate_up_proj): the same counts as separate projections.",),
    )
)

GLM4 = register("glm4")(
    DecoderSpec(
        hf_class="Glm4ForCausalLM",
        kv_heads=2,
        head_dim=128,
        qkv_bias=FromConfig("attention_bias", True),
        out_bias=False,
        notes=("GLM-4-0414: x + norm(attn(norm(x))), x + norm(mlp(norm(x))).",),
        layout=Layout(
            post_attn_norm="post_self_attn_layernorm",
            mlp_norm="post_attention_layernorm",
            post_mlp_norm="post_mlp_layernorm",
        ),
    )
)
