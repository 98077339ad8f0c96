"""EXAONE-4.0 (``Exaone4ForCausalLM``, LG AI): OLMo-2's norm placement with per-head q/k
RMSNorm; three sliding-window layers to one global layer in the 32B model."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec
from symmem.hf.families.olmo2 import OLMO2_LAYOUT
from symmem.hf.registry import register

EXAONE4 = register("exaone4")(
    DecoderSpec(
        hf_class="Exaone4ForCausalLM",
        qk_norm=True,
        qkv_bias=False,
        out_bias=False,
        windows="layer_types",
        sliding_window=4096,
        notes=("EXAONE-4: x + norm(attn(x)), x + norm(mlp(x)) (no norm before a sublayer).",),
        layout=OLMO2_LAYOUT,
    )
)
