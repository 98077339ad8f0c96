"""SmolLM3 (``SmolLM3ForCausalLM``): Llama's layers; every fourth layer without rotary
embeddings (no parameters either way), a tied head."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.registry import register

SMOLLM3 = register("smollm3")(
    DecoderSpec(
        hf_class="SmolLM3ForCausalLM",
        kv_heads=4,
        mlp_bias=FromConfig("mlp_bias", False),
        windows="layer_types",
        tied=True,
        notes=("no_rope_layers: layers without rotary embeddings have the same counts.",),
    )
)
