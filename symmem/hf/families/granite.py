"""Granite (``GraniteForCausalLM``) and Granite-MoE (``GraniteMoeForCausalLM``): Llama's layers
with scalar multipliers (no parameters)."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.families.mixtral import experts
from symmem.hf.registry import register

NOTE = (
    "Granite: embedding_multiplier, residual_multiplier, attention_multiplier and "
    "logits_scaling are scalars (no parameters)."
)

GRANITE = register("granite")(
    DecoderSpec(
        hf_class="GraniteForCausalLM", mlp_bias=FromConfig("mlp_bias", False), notes=(NOTE,)
    )
)

GRANITEMOE = register("granitemoe")(
    DecoderSpec(
        hf_class="GraniteMoeForCausalLM",
        ffn=experts,
        notes=(NOTE, "Granite-MoE: a bias-free router and gated experts in every layer."),
        header_options=("active_embeddings = count",),
    )
)
