"""Mistral (``MistralForCausalLM``): Llama without biases, a sliding window on every layer."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.registry import register

MISTRAL = register("mistral")(
    DecoderSpec(
        hf_class="MistralForCausalLM",
        kv_heads=8,
        qkv_bias=False,
        out_bias=False,
        windows="all",
        sliding_window=4096,  # MistralConfig's default; an explicit null means no window
    )
)
