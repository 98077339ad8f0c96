"""Command-R (``CohereForCausalLM``) and Command-R7B / Command-A (``Cohere2ForCausalLM``):
parallel attention and SwiGLU MLP under one bias-free LayerNorm, a tied head."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig, Layout
from symmem.hf.registry import register

LAYOUT = Layout(norm="layernorm", norm_bias=False, arrangement="parallel", mlp_norm=None)

COHERE = register("cohere")(
    DecoderSpec(
        hf_class="CohereForCausalLM",
        qk_norm=FromConfig("use_qk_norm", False),
        qk_norm_scope="full",
        tied=True,
        notes=(
            "Cohere: x + attn(ln(x)) + mlp(ln(x)), LayerNorm without a shift; logit_scale "
            "has no parameters.",
            "use_qk_norm: a LayerNorm over each head of q and k with its own weights, "
            "(heads + kv_heads) head_dim parameters (counted exactly; its saved tensors are "
            "estimated as an RMSNorm's).",
        ),
        layout=LAYOUT,
    )
)

COHERE2 = register("cohere2")(
    DecoderSpec(
        hf_class="Cohere2ForCausalLM",
        windows="pattern",
        window_pattern=4,
        sliding_window=4096,
        tied=True,
        notes=(
            "Cohere-2: Cohere's parallel layers; three sliding-window layers to one global "
            "layer (sliding_window_pattern).",
        ),
        layout=LAYOUT,
    )
)
