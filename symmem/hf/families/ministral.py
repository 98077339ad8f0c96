"""Ministral (``MinistralForCausalLM``): Mistral's layers; sliding-window attention per
``layer_types``."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.registry import register

MINISTRAL = register("ministral")(
    DecoderSpec(
        hf_class="MinistralForCausalLM",
        kv_heads=8,
        qkv_bias=False,
        out_bias=False,
        windows="all",
        sliding_window=4096,
    )
)
