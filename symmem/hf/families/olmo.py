"""OLMo (``OlmoForCausalLM``): Llama's layers with LayerNorms that have no parameters."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, Layout
from symmem.hf.registry import register

OLMO = register("olmo")(
    DecoderSpec(
        hf_class="OlmoForCausalLM",
        notes=(
            "OLMo's LayerNorm has no weight or bias (OlmoLayerNorm); clip_qkv has no parameters.",
        ),
        layout=Layout(norm="layernorm", norm_affine=False),
    )
)
