"""Gemma-3 text (``Gemma3ForCausalLM``): Gemma-2's sandwich norms, per-head q/k RMSNorm, five
sliding-window layers to one global layer."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, Layout
from symmem.hf.registry import register

GEMMA3_TEXT = register("gemma3_text")(
    DecoderSpec(
        hf_class="Gemma3ForCausalLM",
        kv_heads=4,
        head_dim=256,
        qk_norm=True,
        act=("hidden_activation", "gelu_pytorch_tanh"),
        windows="pattern",
        window_pattern=6,
        sliding_window=4096,
        tied=True,
        notes=(
            "Gemma-3: norms before and after attention and the MLP, RMSNorm of q and k per "
            "head; the (1 + weight) RMSNorm scale has the same d parameters.",
        ),
        layout=Layout(
            post_attn_norm="post_attention_layernorm",
            mlp_norm="pre_feedforward_layernorm",
            post_mlp_norm="post_feedforward_layernorm",
        ),
    )
)
