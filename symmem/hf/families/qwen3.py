"""Qwen3 (``Qwen3ForCausalLM``): per-head RMSNorm of q and k, head_dim 128 by default."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.registry import register

QWEN3 = register("qwen3")(
    DecoderSpec(
        hf_class="Qwen3ForCausalLM",
        kv_heads=32,
        head_dim=128,
        qk_norm=True,
        windows="qwen2",
        notes=("Qwen3 attention: RMSNorm of q and k per head (qk_norm).",),
    )
)
