"""Number formats (symmem.precision): dtype bytes, precision presets, weight quantization."""

from __future__ import annotations

from typing import Any

import pytest
import sympy

import symmem
from symmem.errors import OptionError
from symmem.memory.fast import MemoryEvaluator
from symmem.precision import DTYPE_BYTES, PRECISIONS, QUANTS, precision, quant

# a 4096 x 4096 matrix (16,777,216 weights) followed by an RMSNorm, so that the matrix is not
# the output head (which quantization leaves in high precision)
MATRIX = """
model m(input = [batch, 4096]) {
  linear fc(4096, 4096, bias = false)
  rmsnorm norm(4096)
}
"""
N = 4096 * 4096


def matrix_bits(norm_bytes: int = 2, **options: Any) -> sympy.Rational:
    """Bits per weight of the (quantized) matrix: the norm's 4096 x norm_bytes taken off."""
    m = symmem.parse(MATRIX)
    w = m.memory("infer", precision="bf16", **options).weights.evaluate()
    return sympy.Rational(w - 4096 * norm_bytes, N) * 8


def test_dtype_bytes() -> None:
    assert {k: int(v) if v.is_Integer else v for k, v in DTYPE_BYTES.items()} == {
        "fp32": 4,
        "fp16": 2,
        "bf16": 2,
        "fp8": 1,
        "int8": 1,
        "int4": sympy.Rational(1, 2),
        "nf4": sympy.Rational(1, 2),
    }


def test_presets() -> None:
    assert precision("mixed") is PRECISIONS["mixed-bf16"]
    mixed = PRECISIONS["mixed-fp16"]
    assert (mixed.weights, mixed.grads, mixed.master, mixed.activations) == (
        "fp16",
        "fp16",
        True,
        "fp16",
    )
    amp = precision("amp")
    assert (amp.weights, amp.grads, amp.master, amp.activations) == ("fp32", "fp32", False, "bf16")
    with pytest.raises(OptionError, match="mixed-bf16"):
        precision("fp64")


def test_unquantized_bits() -> None:
    assert matrix_bits() == 16
    # fp8 weights: the norm stays in bf16 (test_fp8_keeps_non_gemm_tensors_in_bf16)
    assert matrix_bits(2, weight_dtype="fp8") == 8
    assert matrix_bits(4, weight_dtype="fp32") == 32


def test_nf4_qlora_bits() -> None:
    """QLoRA (Dettmers et al. 2023, Section 3): 4-bit NormalFloat with one fp32 absmax per 64
    weights costs 32/64 = 0.5 extra bits per parameter; double quantization (8-bit absmax, one
    fp32 constant per 256 blocks) 8/64 + 32/(64 x 256) = 0.127 bits."""
    assert matrix_bits(quant="nf4") == 4 + sympy.Rational(1, 2)
    assert matrix_bits(quant="nf4", double_quant=True) == 4 + sympy.Rational(
        8, 64
    ) + sympy.Rational(32, 64 * 256)


def test_int4_group_128() -> None:
    """GPTQ / AWQ packing (AutoGPTQ QuantLinear): per group of 128 an fp16 scale and a 4-bit zero
    point: 4 + (16 + 4) / 128 = 4.15625 bits per weight; group size 32: 4 + 20/32."""
    assert matrix_bits(quant="int4") == sympy.Rational(415625, 100000)
    assert matrix_bits(quant="int4", group_size=32) == 4 + sympy.Rational(20, 32)


def test_int8_per_row() -> None:
    """LLM.int8(): int8 weights and one fp32 scale per output row: 8 + 32/4096 bits."""
    assert matrix_bits(quant="int8") == 8 + sympy.Rational(32, 4096)
    assert matrix_bits(quant="int8", group_size=64) == 8 + sympy.Rational(32, 64)


def test_output_head_and_embeddings_stay_unquantized() -> None:
    """transformers keeps the output embedding in high precision (get_keys_to_not_convert);
    embedding tables are lookups, not nn.Linear."""
    m = symmem.load("gpt2")
    full = m.memory("infer", precision="bf16").weights.evaluate()
    q = m.memory("infer", precision="bf16", quant="int8", group_size=64).weights.evaluate()
    d = 768
    matrices = 12 * 12 * d * d
    assert full - q == matrices * 2 - (matrices + matrices // 64 * 4)


def test_fp8_keeps_non_gemm_tensors_in_bf16() -> None:
    """--precision fp8 as Transformer Engine's fp8_model_init builds a model: only the GEMM
    matrices (te.Linear, LayerNormLinear, LayerNormMLP weights) are stored in FP8; embeddings,
    norms, biases and the output head stay in bf16 (DeepSeek-V3, arXiv 2412.19437, Section
    3.3.1: embedding, output head, gating and normalization in BF16/FP32).  Hand counts:

    GPT-2 (124,439,808 parameters, head tied to wte): 12 layers x 12 d^2 matrices (c_attn
    3d^2, attn c_proj d^2, c_fc 4d^2, mlp c_proj 4d^2), d = 768, at 1 byte; the rest
    (embeddings, biases, layer norms) at 2 bytes.
    Llama-3.1-8B (8,030,261,248 parameters): embed_tokens and lm_head 128,256 x 4,096 each,
    65 RMSNorms of 4,096 at 2 bytes; the other 6,979,321,856 (the layers' projections) at 1.
    """
    d = 768
    gpt2_mat = 12 * 12 * d * d
    gpt2 = symmem.load("gpt2")
    for mode in ("infer", "train"):
        w = gpt2.memory(mode, precision="fp8").weights.evaluate()
        assert w == gpt2_mat + (124_439_808 - gpt2_mat) * 2
    emb, norms = 128_256 * 4096, 65 * 4096
    mat = 8_030_261_248 - 2 * emb - norms
    assert mat == 6_979_321_856
    llama = symmem.load("llama3.1-8b")
    assert llama.memory("infer", precision="fp8").weights.evaluate() == mat + 2 * (2 * emb + norms)
    # the fast evaluator keeps the same split (fp8 weights are a structure of their own)
    ev = MemoryEvaluator(gpt2.graph, gpt2.values)
    assert (
        ev.bytes(mode="infer", precision="fp8")["weights"]
        == gpt2_mat + (124_439_808 - gpt2_mat) * 2
    )
    assert ev.bytes(mode="infer", precision="bf16")["weights"] == 124_439_808 * 2


def test_quant_options() -> None:
    assert {"int8", "int4", "nf4", "awq", "gptq", "fp8-block", "mxfp4", "nvfp4"} <= set(QUANTS)
    with pytest.raises(OptionError, match="nf4"):
        quant("int3")
    m = symmem.parse(MATRIX)
    with pytest.raises(OptionError, match="nf4"):
        m.memory("infer", quant="int4", double_quant=True)
    with pytest.raises(OptionError, match="group_size"):
        m.memory("infer", group_size=64)


def test_kv_dtype_default_follows_weights() -> None:
    m = symmem.load("gpt2")
    assert m.memory("infer", precision="bf16").config.kv_dtype == "bf16"
    assert m.memory("infer", precision="fp32").config.kv_dtype == "fp32"
    assert m.memory("infer", precision="bf16", quant="nf4").config.kv_dtype == "bf16"


def test_fp8_channel_nvfp4_mxfp4_whole_models_by_hand() -> None:
    """Whole-model weight bytes of three checkpoint formats, by hand (the per-matrix layouts
    are tests/test_defaults.py::test_each_format_against_its_tensors; DeepSeek-V3's fp8
    blocks are test_defaults.py::test_deepseek_v3_fp8_checkpoint).

    Llama-3.1-8B (d 4,096, 32 layers, kv 1,024, ffn 14,336, vocabulary 128,256, untied):
    per layer q, o 4,096 x 4,096, k, v 1,024 x 4,096, gate, up 14,336 x 4,096, down
    4,096 x 14,336; embedding, head and the 65 RMSNorms in bf16.  compressed-tensors fp8
    per channel: o i bytes + a bf16 scale per output row (9,083,953,152 B); NVFP4: o i / 2 +
    an fp8 scale per 16 values + one fp32 global scale per matrix (6,027,748,224 B).
    Mixtral-8x7B (vocabulary 32,000, 8 experts): MXFP4 on the experts only (gpt-oss's
    modules_to_not_convert), o i / 2 + an 8-bit scale per 32 values; attention, the 8 x
    4,096 routers, norms, embedding and head in bf16 (27,169,136,640 B)."""
    d, n_layers, f, vocab, kv = 4096, 32, 14336, 128256, 1024
    attn = [(d, d), (kv, d), (kv, d), (d, d)]
    mlp = [(f, d), (f, d), (d, f)]
    bf16 = 2 * (2 * vocab * d + n_layers * 2 * d + d)
    fp8 = bf16 + n_layers * sum(o * i + 2 * o for o, i in attn + mlp)
    nv = bf16 + n_layers * sum(o * i // 2 + o * i // 16 + 4 for o, i in attn + mlp)
    llama = symmem.load("llama3.1-8b")
    assert llama.memory("infer", quant="fp8-channel").weights.evaluate() == fp8 == 9_083_953_152
    assert llama.memory("infer", quant="nvfp4").weights.evaluate() == nv == 6_027_748_224
    vocab, experts = 32000, 8
    kept = 2 * (2 * vocab * d + n_layers * (2 * d + experts * d + sum(o * i for o, i in attn)) + d)
    mx = kept + n_layers * experts * sum(o * i // 2 + o * i // 32 for o, i in mlp)
    mixtral = symmem.load("mixtral-8x7b")
    assert mixtral.memory("infer", quant="mxfp4").weights.evaluate() == mx == 27_169_136_640
