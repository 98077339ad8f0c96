"""param: a free-standing tensor; parameters = product of its dimensions."""

from __future__ import annotations

import pytest

import symmem
from symmem.errors import SymmemError


def _model(body: str) -> symmem.Model:
    return symmem.parse(f"d = 16\nmodel m(input = [batch, seq_len, d]) {{\n{body}\n}}")


def test_t5_relative_bias_table() -> None:
    # T5: relative_attention_bias = nn.Embedding(32 buckets, 12 heads) (T5-base): 384 values.
    m = _model("param rel_bias(32, 12)")
    assert m.params().total.evaluate() == 32 * 12


def test_dims_and_shape() -> None:
    m = _model("param a(3)\nparam b(1, 1, d)\nparam c(2, 3, 4, 5)\nlinear(d, 8)")
    assert m.params().total.evaluate() == 3 + 16 + 120 + 16 * 8 + 8
    node = m.graph.layer("b")
    assert node.in_shape == node.out_shape


def test_needs_a_dimension() -> None:
    with pytest.raises(SymmemError):
        _model("param a()")


def test_too_many_dimensions() -> None:
    with pytest.raises(SymmemError):
        _model("param a(1, 2, 3, 4, 5)")


def test_torch_module() -> None:
    torch = pytest.importorskip("torch")
    m = _model("param c(2, 3, d)")
    module = m.graph.layer("c").layer.to_torch(lambda e: int(e.xreplace(m.values)))
    assert sum(p.numel() for p in module.parameters()) == 2 * 3 * 16
    x = torch.randn(2, 16)
    assert torch.equal(module(x), x)
