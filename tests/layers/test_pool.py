"""Pooling kinds: output shapes against torch.nn.MaxPool*d / AvgPool*d / AdaptiveAvgPool*d
(ceil_mode included), no parameters, and the user errors."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.symbols import sym


def one(text: str, input_shape: str) -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{\n{text}\n}}\n")


CASES = [
    ("maxpool1d(2)", (2, 3, 9)),
    ("maxpool1d(3, stride = 2, padding = 1, dilation = 2)", (2, 3, 16)),
    ("maxpool1d(3, stride = 2, ceil_mode = true)", (2, 3, 10)),
    ("maxpool2d(2)", (2, 3, 9, 8)),
    ("maxpool2d(3, stride = 2, padding = 1)", (2, 3, 112, 112)),  # ResNet stem: 112 -> 56
    ("maxpool2d(3, stride = 2, ceil_mode = true)", (1, 3, 10, 11)),
    (
        "maxpool2d(3, stride = 2, padding = 1, ceil_mode = true)",
        (1, 3, 7, 8),
    ),  # last window dropped
    ("maxpool2d(2, stride = 1, dilation = 2)", (1, 3, 7, 7)),
    ("avgpool1d(3)", (2, 3, 10)),
    ("avgpool1d(4, stride = 3, padding = 2, ceil_mode = true)", (2, 3, 10)),
    ("avgpool2d(2)", (2, 3, 9, 9)),
    (
        "avgpool2d(3, stride = 2, padding = 1, ceil_mode = true, count_include_pad = false)",
        (2, 3, 16, 15),
    ),
    ("avgpool2d(3, stride = 2, ceil_mode = true)", (3, 16, 16)),  # unbatched
    ("adaptive_avgpool1d(4)", (2, 3, 10)),
    ("adaptive_avgpool2d(7)", (2, 3, 13, 9)),
    ("adaptive_avgpool2d(1)", (2, 3, 5, 5)),
    ("global_avgpool2d", (2, 3, 5, 6)),
]


@pytest.mark.parametrize(("dsl", "shape"), CASES)
def test_against_torch(dsl: str, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    m = one(dsl, "[" + ", ".join(map(str, shape)) + "]")
    node = next(iter(m.graph.walk()))[0]
    module = node.layer.to_torch(lambda e: int(sympy.sympify(e).xreplace(m.values)))
    assert m.params().total.evaluate() == 0 == sum(p.numel() for p in module.parameters())
    out = module(torch.zeros(*shape))
    assert tuple(int(s) for s in node.out_shape) == tuple(out.shape)


def test_ceil_mode_sizes_swept_against_torch() -> None:
    """Every size 4..20 for a few window settings, where floor and ceil modes differ."""
    torch = pytest.importorskip("torch")
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 3, 0), (5, 3, 2)]:
        for n in range(max(k, 4), 21):
            for ceil in (False, True):
                m = one(
                    f"maxpool1d({k}, stride = {s}, padding = {p}, ceil_mode = {str(ceil).lower()})",
                    f"[1, 1, {n}]",
                )
                node = next(iter(m.graph.walk()))[0]
                out = torch.nn.MaxPool1d(k, s, p, ceil_mode=ceil)(torch.zeros(1, 1, n))
                assert int(node.out_shape[-1]) == out.shape[-1], (k, s, p, n, ceil)


def test_stride_defaults_to_kernel_size_and_stays_symbolic() -> None:
    m = symmem.parse("h\nmodel m(input = [batch, 8, h, h]) { maxpool2d(2) }\n")
    node = next(iter(m.graph.walk()))[0]
    h = sym("h")
    # floor((h + 0 - 1*(2-1) - 1) / 2) + 1 = floor(h/2)
    assert sympy.simplify(node.out_shape[2] - (sympy.floor((h - 2) / 2) + 1)) == 0
    assert node.out_shape[:2] == (sym("batch"), 8)


def test_padding_at_most_half_the_kernel() -> None:
    # PyTorch: "pad should be at most half of effective kernel size"
    with pytest.raises(
        symmem.SymmemError, match=r"padding = 2 is more than half of kernel_size = 3"
    ):
        one("maxpool2d(3, padding = 2)", "[1, 3, 8, 8]")


def test_non_positive_output_size() -> None:
    # floor((3 - 4 - 1 + 0) / 4) + 1 = floor(-2/4) + 1 = 0
    with pytest.raises(symmem.SymmemError, match=r"maxpool2d 'pool'.*non-positive size 0"):
        one("maxpool2d pool(4)", "[1, 3, 3, 3]")


def test_needs_a_channels_first_input() -> None:
    with pytest.raises(symmem.SymmemError, match=r"channels-first input \[batch, C, H, W\]"):
        one("avgpool2d(2)", "[batch, 16]")


def test_symbolic_ceil_mode_size_evaluates_like_torch() -> None:
    """With a free size the ceil-mode correction stays a Piecewise; each value matches torch."""
    torch = pytest.importorskip("torch")
    m = symmem.parse(
        "n\n"
        "model m(input = [1, 1, n]) { maxpool1d(3, stride = 2, padding = 1, ceil_mode = true) }\n"
    )
    size = next(iter(m.graph.walk()))[0].out_shape[-1]
    assert size.has(sympy.Piecewise)
    pool = torch.nn.MaxPool1d(3, 2, 1, ceil_mode=True)
    for n in range(2, 30):
        assert int(size.subs(sym("n"), n)) == pool(torch.zeros(1, 1, n)).shape[-1], n
