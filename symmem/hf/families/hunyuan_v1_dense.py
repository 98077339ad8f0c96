"""Hunyuan dense (``HunYuanDenseV1ForCausalLM``, Tencent): Llama's layers with per-head q/k
RMSNorm."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.registry import register

HUNYUAN = register("hunyuan_v1_dense")(
    DecoderSpec(
        hf_class="HunYuanDenseV1ForCausalLM",
        qk_norm=True,
        mlp_bias=FromConfig("mlp_bias", False),
    )
)
