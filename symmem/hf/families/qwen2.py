"""Qwen2 (``Qwen2ForCausalLM``): q/k/v biases, no output bias; sliding window from a layer on."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.registry import register

QWEN2 = register("qwen2")(
    DecoderSpec(
        hf_class="Qwen2ForCausalLM",
        kv_heads=32,
        qkv_bias=True,  # always, as Qwen2Attention builds it
        out_bias=False,
        windows="qwen2",
        notes=("Qwen2 attention: q, k, v projections with biases, output projection without.",),
    )
)
