"""Llama (``LlamaForCausalLM``): RMSNorm, grouped-query attention, SwiGLU MLP."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.registry import register

LLAMA = register("llama")(
    DecoderSpec(hf_class="LlamaForCausalLM", mlp_bias=FromConfig("mlp_bias", False))
)
