"""Helium (``HeliumForCausalLM``, Kyutai): Llama's layers with head_dim 128."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.registry import register

HELIUM = register("helium")(
    DecoderSpec(hf_class="HeliumForCausalLM", head_dim=128, mlp_bias=FromConfig("mlp_bias", False))
)
