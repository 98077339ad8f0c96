"""Seed-OSS (``SeedOssForCausalLM``, ByteDance): Llama's layers, biased q/k/v, an unbiased o."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.registry import register

SEED_OSS = register("seed_oss")(
    DecoderSpec(
        hf_class="SeedOssForCausalLM",
        kv_heads=8,
        head_dim=128,
        qkv_bias=FromConfig("attention_bias", True),
        out_bias=FromConfig("attention_out_bias", False),
        mlp_bias=FromConfig("mlp_bias", False),
        dropout=("residual_dropout", 0.1),
    )
)
