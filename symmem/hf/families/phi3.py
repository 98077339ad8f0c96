"""Phi-3 (``Phi3ForCausalLM``): fused projections with Llama's counts, an optional window."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.registry import register

PHI3 = register("phi3")(
    DecoderSpec(
        hf_class="Phi3ForCausalLM",
        qkv_bias=False,
        out_bias=False,
        windows="all",
        notes=(
            "Phi-3 fuses q/k/v (qkv_proj) and gate/up (gate_up_proj): "
            "the same counts as separate projections.",
        ),
    )
)
