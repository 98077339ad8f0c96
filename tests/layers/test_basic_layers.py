"""linear, embedding, pos_embedding, layernorm, rmsnorm, activations, dropout, softmax:
parameter counts and shapes against the PyTorch modules they stand for."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.symbols import sym


def one(text: str, input_shape: str = "[batch, seq_len, 16]") -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{ {text} }}\n")


@pytest.mark.parametrize(
    ("dsl", "expected"),
    [
        ("linear(16, 8)", 16 * 8 + 8),  # nn.Linear: weight (out, in) + bias (out)
        ("linear(16, 8, bias = false)", 16 * 8),
        ("dense(16, 8)", 136),  # Keras name, same layer
        ("layernorm(16)", 32),  # weight + bias
        ("layernorm(16, bias = false)", 16),
        ("layernorm(16, affine = false)", 0),
        ("rmsnorm(16)", 16),
        ("pos_embedding(32, 16)", 512),
        ("gelu", 0),
        ("dropout(0.1)", 0),
        ("softmax", 0),
    ],
)
def test_counts_by_hand(dsl: str, expected: int) -> None:
    assert one(dsl).params().total.evaluate() == expected


def test_embedding_maps_ids_to_vectors() -> None:
    m = one("embedding(100, 16)", "[batch, seq_len]")
    assert m.params().total.evaluate() == 1600
    assert m.graph.root.out_shape == (sym("batch"), sym("seq_len"), 16)


def test_linear_formula_is_symbolic() -> None:
    m = symmem.parse("i\no\nmodel m(input = [batch, i]) { linear(i, o) }\n")
    i, o = sym("i"), sym("o")
    assert sympy.expand(m.params().total.expr - (i * o + o)) == 0


def test_dropout_probability_is_checked() -> None:
    with pytest.raises(symmem.SymmemError, match=r"p must be in \[0, 1\)"):
        one("dropout(1.5)")


# Against PyTorch (parameters, output shape, saved bytes): tests/layers/test_examples.py,
# over every kind's examples.
