"""OLMo-2 (``Olmo2ForCausalLM``): norms after attention and after the MLP (inside the residual),
RMSNorm of q and k over the whole projection."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, Layout
from symmem.hf.registry import register

OLMO2_LAYOUT = Layout(
    attn_norm=None,
    mlp_norm=None,
    post_attn_norm="post_attention_layernorm",
    post_mlp_norm="post_feedforward_layernorm",
)

OLMO2 = register("olmo2")(
    DecoderSpec(
        hf_class="Olmo2ForCausalLM",
        qk_norm=True,
        qk_norm_scope="full",
        notes=("OLMo-2: x + norm(attn(x)), x + norm(mlp(x)): no norm before each sublayer.",),
        layout=OLMO2_LAYOUT,
    )
)
