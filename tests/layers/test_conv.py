"""conv1d / conv2d / conv3d: parameter counts and output shapes against torch.nn.Conv*d,
the symbolic formulas, and the user errors (groups, channels, output size)."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.errors import SemanticError
from symmem.layers.conv import Conv2d
from symmem.symbols import sym


def one(text: str, input_shape: str) -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{\n{text}\n}}\n")


def ints(shape: tuple[sympy.Expr, ...]) -> tuple[int, ...]:
    return tuple(int(s) for s in shape)


CASES = [
    # (dsl, input shape)
    ("conv1d(4, 8, 3)", (2, 4, 17)),
    ("conv1d(4, 8, 5, stride = 2, padding = 2, dilation = 2, bias = false)", (2, 4, 17)),
    ("conv1d(6, 9, 3, groups = 3)", (6, 11)),  # unbatched input, as PyTorch allows
    ("conv2d(3, 16, 3)", (2, 3, 15, 15)),
    ("conv2d(3, 16, 7, stride = 2, padding = 3, bias = false)", (2, 3, 32, 31)),
    ("conv2d(8, 8, 3, padding = 1, groups = 8)", (1, 8, 9, 9)),  # depthwise
    ("conv2d(8, 12, 3, stride = 3, dilation = 2, groups = 4)", (1, 8, 20, 13)),
    ("conv2d(16, 4, 1)", (2, 16, 5, 5)),  # pointwise
    ("conv3d(2, 4, 3)", (1, 2, 6, 7, 8)),
    ("conv3d(2, 6, 3, stride = 2, padding = 1, groups = 2, bias = false)", (1, 2, 6, 7, 8)),
]


@pytest.mark.parametrize(("dsl", "shape"), CASES)
def test_against_torch(dsl: str, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    m = one(dsl, "[" + ", ".join(map(str, shape)) + "]")
    node = next(iter(m.graph.walk()))[0]
    module = node.layer.to_torch(lambda e: int(sympy.sympify(e).xreplace(m.values)))
    assert m.params().total.evaluate() == sum(p.numel() for p in module.parameters())
    with torch.no_grad():
        out = module(torch.zeros(*shape))
    assert ints(node.out_shape) == tuple(out.shape)


def test_counts_by_hand() -> None:
    # nn.Conv2d weight (out, in/groups, k, k) + bias (out)
    assert one("conv2d(3, 64, 7)", "[1, 3, 32, 32]").params().total.evaluate() == 64 * 3 * 49 + 64
    # depthwise: groups = in = out -> one k x k filter per channel
    assert (
        one("conv2d(32, 32, 3, groups = 32, bias = false)", "[1, 32, 8, 8]")
        .params()
        .total.evaluate()
        == 32 * 9
    )
    assert one("conv3d(2, 4, 3)", "[1, 2, 5, 5, 5]").params().total.evaluate() == 4 * 2 * 27 + 4
    assert (
        one("conv1d(4, 8, 3, groups = 2)", "[1, 4, 9]").params().total.evaluate() == 8 * 2 * 3 + 8
    )


def test_formula_and_output_size_are_symbolic() -> None:
    m = symmem.parse(
        "cin, cout, k, g, h\n"
        "model m(input = [batch, cin, h, h]) "
        "{ conv2d(cin, cout, k, stride = 2, padding = 1, groups = g) }\n"
    )
    cin, cout, k, g, h = (sym(x) for x in ("cin", "cout", "k", "g", "h"))
    assert sympy.simplify(m.params().total.expr - (cout * (cin / g) * k**2 + cout)) == 0
    node = next(iter(m.graph.walk()))[0]
    # floor((n + 2p - d(k-1) - 1) / s) + 1 with p = 1, d = 1, s = 2 (nn.Conv2d docs, "Shape")
    expected = sympy.floor((h + 2 - (k - 1) - 1) / 2) + 1
    assert sympy.simplify(node.out_shape[2] - expected) == 0
    assert node.out_shape[1] == cout


def test_same_padding_keeps_a_symbolic_size() -> None:
    m = symmem.parse("h = 32\nmodel m(input = [batch, 3, h, h]) { conv2d(3, 8, 3, padding = 1) }\n")
    node = next(iter(m.graph.walk()))[0]
    assert node.out_shape == (sym("batch"), 8, sym("h"), sym("h"))


def test_groups_must_divide_in_channels() -> None:
    with pytest.raises(
        symmem.SymmemError, match=r"groups = 4 does not divide in_channels = 6"
    ) as exc:
        one("conv2d c(6, 8, 3, groups = 4)", "[1, 6, 8, 8]")
    assert "conv2d 'c'" in str(exc.value)


def test_groups_must_divide_out_channels() -> None:
    with pytest.raises(symmem.SymmemError, match=r"groups = 4 does not divide out_channels = 6"):
        one("conv1d(8, 6, 3, groups = 4)", "[1, 8, 8]")


def test_channel_mismatch_names_both_layers_and_shapes() -> None:
    with pytest.raises(symmem.SymmemError) as exc:
        one("conv2d first(3, 16, 3)\nconv2d second(32, 8, 3)", "[batch, 3, 10, 10]")
    msg = str(exc.value)
    assert "'first'" in msg and "'second'" in msg
    assert "[batch, 16, 8, 8]" in msg  # what 'first' gives
    assert "in_channels = 32" in msg and "[batch, 32, H, W]" in msg  # what 'second' expects


def test_input_rank_is_checked() -> None:
    with pytest.raises(symmem.SymmemError, match=r"channels-first input \[batch, C, H, W\]"):
        one("conv2d(3, 8, 3)", "[batch, 3]")


def test_non_positive_output_size() -> None:
    # floor((5 + 0 - 6 - 1) / 1) + 1 = -1
    with pytest.raises(symmem.SymmemError, match=r"non-positive size -1") as exc:
        one("conv2d c(3, 8, 7)", "[batch, 3, 5, 5]")
    assert "conv2d 'c'" in str(exc.value)


def test_non_positive_output_size_at_default_values() -> None:
    # symbolic in h; at h = 4: floor((4 - 6 - 1) / 2) + 1 = -1
    with pytest.raises(SemanticError, match=r"non-positive size .* = -1 at the given values"):
        symmem.parse("h = 4\nmodel m(input = [batch, 3, h, h]) { conv2d(3, 8, 7, stride = 2) }\n")
    # the same file is fine once h is large enough
    m = symmem.parse(
        "h = 4\nmodel m(input = [batch, 3, h, h]) { conv2d(3, 8, 7, stride = 2) }\n",
        set_values={"h": 224},
    )
    assert m.params().total.evaluate() == 8 * 3 * 49 + 8


def test_direct_output_shape_error_names_expected_and_actual() -> None:
    layer = Conv2d(sympy.Integer(4), sympy.Integer(8), sympy.Integer(3))
    with pytest.raises(symmem.SymmemError, match=r"\[batch, 4, H, W\], not \[2, 5, 9, 9\]"):
        layer.output_shape((sympy.Integer(2), sympy.Integer(5), sympy.Integer(9), sympy.Integer(9)))
