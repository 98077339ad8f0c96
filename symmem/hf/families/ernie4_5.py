"""ERNIE-4.5 dense (``Ernie4_5ForCausalLM``): Llama's layers, ``use_bias`` for every
projection, a tied head."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.registry import register

ERNIE4_5 = register("ernie4_5")(
    DecoderSpec(
        hf_class="Ernie4_5ForCausalLM",
        kv_heads=2,
        head_dim=128,
        qkv_bias=FromConfig("use_bias", False),
        out_bias=FromConfig("use_bias", False),
        mlp_bias=FromConfig("use_bias", False),
        tied=True,
    )
)
