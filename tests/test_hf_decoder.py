"""The HF decoder skeleton (symmem.hf.decoder) and the family registry (symmem.hf.registry).

Counts of the real families are pinned against transformers in test_hf_exact.py;
here, the layout options no published family uses yet (a head with a bias) and
the registry's contract.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import symmem
from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, Layout, layer_lines
from symmem.hf.families import catalogue, register, supported_model_types

V_D = 100 * 16  # vocabulary x hidden size
SMALL = {
    "model_type": "llama",
    "vocab_size": 100,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "tie_word_embeddings": False,
}


def total(spec: DecoderSpec, **fields: object) -> int:
    text = spec(HFConfig({**SMALL, **fields}, "config.json")).render()
    return symmem.parse(text).params().total.evaluate()


def test_supported_types_come_from_the_registry() -> None:
    assert supported_model_types() == sorted(catalogue())
    assert {"llama", "gpt2", "falcon", "deepseek_v3", "t5"} <= set(catalogue())


def test_a_model_type_registers_once() -> None:
    with pytest.raises(RuntimeError, match="registered twice"):
        register("llama")(DecoderSpec(hf_class="Other"))


def test_head_bias_and_layernorm_are_layout_data() -> None:
    # d = 16, f = 32, V = 100, 2 layers; attention 4 d^2, gated MLP 3 d f
    base = DecoderSpec(hf_class="LlamaForCausalLM")
    rms = 2 * V_D + 2 * (4 * 16 * 16 + 3 * 16 * 32 + 2 * 16) + 16
    assert total(base) == rms
    ln = replace(base, layout=Layout(norm="layernorm", head_bias=True))
    assert total(ln) == rms + (2 * 2 + 1) * 16 + 100  # a shift per norm, a bias per logit


def test_parallel_layout_with_one_shared_norm() -> None:
    layout = Layout(norm="layernorm", arrangement="parallel", mlp_norm=None)
    (text,) = layer_lines(layout, "attention a(hidden_size, heads = 4)", "mlp m(hidden_size, 64)")
    assert text.startswith("residual {\n  layernorm input_layernorm(hidden_size)\n  parallel {")
    assert text.count("layernorm ") == 1
    # one LayerNorm (2 d) per layer instead of two
    two_norms = replace(layout, mlp_norm="post_attention_layernorm")
    assert total(DecoderSpec(hf_class="X", layout=two_norms)) - total(
        DecoderSpec(hf_class="X", layout=layout)
    ) == 2 * (2 * 16)
