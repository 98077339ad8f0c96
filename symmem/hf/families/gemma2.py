"""Gemma-2 (``Gemma2ForCausalLM``): sandwich norms, sliding and global layers alternating."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, Layout
from symmem.hf.registry import register

GEMMA2 = register("gemma2")(
    DecoderSpec(
        hf_class="Gemma2ForCausalLM",
        kv_heads=4,
        head_dim=256,
        act=("hidden_activation", "gelu_pytorch_tanh"),
        windows="gemma2",
        sliding_window=4096,
        tied=True,
        notes=(
            "Gemma-2: norms before and after attention and the MLP; "
            "logit soft-capping has no parameters.",
        ),
        layout=Layout(
            post_attn_norm="post_attention_layernorm",
            mlp_norm="pre_feedforward_layernorm",
            post_mlp_norm="post_feedforward_layernorm",
        ),
    )
)
