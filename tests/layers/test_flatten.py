"""flatten: output shapes against torch.nn.Flatten, symbolic products, range errors."""

from __future__ import annotations

import pytest

import symmem
from symmem.symbols import sym


def one(text: str, input_shape: str) -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{\n{text}\n}}\n")


@pytest.mark.parametrize(
    ("dsl", "shape"),
    [
        ("flatten", (2, 3, 4, 5)),
        ("flatten(0)", (2, 3, 4, 5)),
        ("flatten(1, 2)", (2, 3, 4, 5)),
        ("flatten(start_dim = -2)", (2, 3, 4, 5)),
        ("flatten(2, -1)", (2, 3, 4)),
        ("flatten(1, 1)", (2, 3, 4)),
        ("flatten", (2, 7)),
    ],
)
def test_against_torch(dsl: str, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    m = one(dsl, "[" + ", ".join(map(str, shape)) + "]")
    node = next(iter(m.graph.walk()))[0]
    module = node.layer.to_torch(lambda e: int(e))
    out = module(torch.zeros(*shape))
    assert tuple(int(s) for s in node.out_shape) == tuple(out.shape)
    assert m.params().total.evaluate() == 0


def test_symbolic_product() -> None:
    m = symmem.parse("c, h, w\nmodel m(input = [batch, c, h, w]) { flatten }\n")
    assert m.graph.root.out_shape == (sym("batch"), sym("c") * sym("h") * sym("w"))


def test_then_linear_checks_the_product() -> None:
    m = one("flatten\nlinear(3 * 4 * 5, 10)", "[batch, 3, 4, 5]")
    assert m.params().total.evaluate() == 60 * 10 + 10
    with pytest.raises(symmem.SymmemError, match=r"\[batch, 60\]"):
        one("flatten\nlinear(50, 10)", "[batch, 3, 4, 5]")


def test_dims_out_of_range() -> None:
    with pytest.raises(
        symmem.SymmemError, match=r"start_dim = 3, end_dim = -1 are not dimensions .* \(rank 3\)"
    ):
        one("flatten(3)", "[batch, 3, 4]")


def test_start_after_end() -> None:
    with pytest.raises(symmem.SymmemError, match=r"start_dim = 2 comes after end_dim = 1"):
        one("flatten(2, 1)", "[batch, 3, 4]")


def test_start_dim_must_be_an_integer_constant() -> None:
    with pytest.raises(symmem.SymmemError, match=r"start_dim must be an integer constant"):
        one("flatten(start_dim = 1 / 2)", "[batch, 3, 4]")
