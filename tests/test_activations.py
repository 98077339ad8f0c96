"""symmem.activations: the walk over the layer graph and the per-kind rules.

Expected numbers are hand derivations (in comments), a paper's formula
(Korthikanti et al. 2022, Section 4.1 / Table 2) or measured with PyTorch
through symmem.check (saved_tensors_hooks, by storage).
"""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.activations import ActPolicy, dtype_bytes, entries_bytes, saved_tensors, transient
from symmem.errors import OptionError

KORTHIKANTI = """
h
a
model layer(input = [batch, seq_len, h]) {
  residual {
    layernorm(h)
    attention(h, heads = a, dropout = 0.1, impl = eager)
    dropout(0.1)
  }
  residual {
    layernorm(h)
    mlp(h, 4 * h, act = gelu, dropout = 0.1)
  }
}
"""


def _bytes(m, policy):
    return sympy.expand(entries_bytes(saved_tensors(m.graph, policy), policy))


def test_korthikanti_table2_no_parallelism():
    # Korthikanti et al. 2022, Section 4.1: sbh(34 + 5as/h) bytes per layer with 16-bit
    # activations, 1-byte dropout masks, eager attention with dropout, small buffers
    # (layer-norm statistics) left out.
    m = symmem.parse(KORTHIKANTI, free=["h", "a"])
    pol = ActPolicy(
        attention="eager", device="cuda", dtype="bf16", small_buffers=False, loss="none"
    )
    s, b, h, a = (m.symbol(n) for n in ("seq_len", "batch", "h", "a"))
    assert sympy.simplify(_bytes(m, pol) - s * b * h * (34 + 5 * a * s / h)) == 0


def test_korthikanti_tags():
    # selective recompute drops the 5as^2b core; TP splits the tensors inside attention/MLP:
    # Table 2: with tensor parallel t, sbh(10 + 24/t + 5as/(ht)): replicated 10 = 2 LN inputs (4),
    # attention and MLP inputs (4), two residual dropout masks (2).
    m = symmem.parse(KORTHIKANTI, free=["h", "a"])
    pol = ActPolicy(
        attention="eager", device="cuda", dtype="bf16", small_buffers=False, loss="none"
    )
    es = saved_tensors(m.graph, pol)
    s, b, h, a = (m.symbol(n) for n in ("seq_len", "batch", "h", "a"))
    core = sympy.expand(entries_bytes([e for e in es if e.saved.core], pol))
    assert sympy.simplify(core - 5 * a * s * s * b) == 0
    split = sympy.expand(entries_bytes([e for e in es if e.saved.tp_split], pol))
    assert sympy.simplify(split - s * b * h * (24 + 5 * a * s / h)) == 0


def test_repeat_boundary_counts_stream_tensor_once():
    # repeat 3 { linear; relu }: the first linear keeps the input x; each relu keeps its output,
    # which is the next linear's input: 1 + 3 = 4 tensors of b*d, not 6.
    m = symmem.parse("d\nmodel m(input = [batch, d]) { repeat 3 { linear(d, d); relu } }")
    es = saved_tensors(m.graph, ActPolicy(loss="none"))
    b, d = m.symbol("batch"), m.symbol("d")
    assert sympy.expand(sum(e.numel for e in es)) == 4 * b * d


def test_consecutive_input_output_dedup():
    # relu keeps its output, the next linear keeps its input: the same tensor, once.
    m = symmem.parse("d\nmodel m(input = [batch, d]) { linear(d, d); relu; linear(d, d) }")
    es = saved_tensors(m.graph, ActPolicy(loss="none"))
    b, d = m.symbol("batch"), m.symbol("d")
    assert sympy.expand(sum(e.numel for e in es)) == 2 * b * d


def test_view_layer_keeps_one_stream_tensor():
    # relu keeps its output; flatten is a view of it; the last linear keeps that view's
    # storage: one tensor. x (b*4*6) + relu's output (b*24) = 2 * 24 b elements.
    m = symmem.parse(
        "model m(input = [batch, 4, 6]) { linear(6, 6); relu; flatten; linear(24, 5) }"
    )
    es = saved_tensors(m.graph, ActPolicy(loss="none"))
    assert sympy.expand(sum(e.numel for e in es)) == 48 * m.symbol("batch")


def test_gqa_eager_saves_expanded_kv():
    text = "model m(input = [batch, seq_len, 64]) { attention(64, heads = 8, kv_heads = %d) }"
    mha, gqa = symmem.parse(text % 8), symmem.parse(text % 2)
    eager = ActPolicy(attention="eager", dropout=False, loss="none")
    sdpa = ActPolicy(attention="sdpa", dropout=False, loss="none")
    assert _bytes(mha, eager) == _bytes(gqa, eager)
    # sdpa keeps k and v at 2 heads: 2 * b*s*(8-2)*8 elements fewer
    b, s = mha.symbol("batch"), mha.symbol("seq_len")
    assert sympy.expand(_bytes(mha, sdpa) - _bytes(gqa, sdpa)) == 4 * 2 * b * s * 6 * 8


def test_mla_kv_cache_deepseek_v3():
    # DeepSeek-V3: (kv_lora_rank 512 + rope 64) x 61 layers x 2 bytes = 70,272 bytes per token
    m = symmem.load("deepseek-v3")
    total = sum(n.layer.kv_cache(n.in_shape, ActPolicy()) * k for n, k in m.graph.walk())
    per_token = m.quantity(total).evaluate(batch=1, seq_len=1)
    assert 2 * per_token == 70272


def test_attention_kv_cache_llama31_8b():
    # Llama-3.1-8B: 2 (k, v) x 8 kv heads x 128 x 32 layers x 2 bytes = 131,072 bytes per token
    m = symmem.load("llama3.1-8b")
    total = sum(n.layer.kv_cache(n.in_shape, ActPolicy()) * k for n, k in m.graph.walk())
    assert 2 * m.quantity(total).evaluate(batch=1, seq_len=1) == 131072


def test_dtype_classes():
    assert (
        dtype_bytes("mask", ActPolicy(device="cuda", dtype="bf16")) == 1
    )  # native_dropout: bool mask
    assert (
        dtype_bytes("mask", ActPolicy(device="cpu", dtype="bf16")) == 2
    )  # CPU: noise in act dtype
    assert dtype_bytes("mask", ActPolicy(device="cpu", dtype="fp32")) == 4


def test_transient_is_logits_and_two_fp32_grads():
    m = symmem.load("gpt2")
    t = transient(m.graph, ActPolicy(dtype="bf16"))
    assert [e.saved.name for e in t] == ["logits", "grad_log_probs", "grad_logits"]
    assert [e.saved.dtype for e in t] == ["act", "fp32", "fp32"]


@pytest.mark.parametrize("bad", [{"attention": "fast"}, {"device": "tpu"}, {"dtype": "int8"}])
def test_policy_errors(bad):
    with pytest.raises(OptionError):
        ActPolicy(**bad)


# Each kind measured alone (fp32 and bf16, eager and sdpa): tests/layers/test_examples.py,
# over the examples every kind declares.
