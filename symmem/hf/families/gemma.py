"""Gemma (``GemmaForCausalLM``): head_dim 256, tanh-GELU, a tied head."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.registry import register

GEMMA = register("gemma")(
    DecoderSpec(
        hf_class="GemmaForCausalLM",
        kv_heads=16,
        head_dim=256,
        act=("hidden_act", "gelu_pytorch_tanh"),
        act_aliases=(("gelu", "gelu_tanh"),),  # GemmaConfig maps gelu -> tanh
        tied=True,
        notes=("Gemma's RMSNorm scales by (1 + weight): the same d parameters per norm.",),
    )
)
