"""batchnorm1d / 2d / 3d: parameters (parameters()) and buffers (buffers(), state_dict())
against torch.nn.BatchNorm*d, shapes, and channel errors."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.symbols import sym


def one(text: str, input_shape: str) -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{\n{text}\n}}\n")


CASES = [
    ("batchnorm1d(6)", (4, 6)),
    ("batchnorm1d(6, affine = false)", (4, 6, 5)),
    ("batchnorm2d(8)", (2, 8, 5, 5)),
    ("batchnorm2d(8, track_running_stats = false)", (2, 8, 5, 5)),
    ("batchnorm2d(8, affine = false, track_running_stats = false)", (2, 8, 3, 3)),
    ("batchnorm2d(8, eps = 0.001, momentum = 0.01)", (2, 8, 3, 3)),
    ("batchnorm3d(4)", (2, 4, 3, 3, 3)),
]


@pytest.mark.parametrize(("dsl", "shape"), CASES)
def test_against_torch(dsl: str, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    m = one(dsl, "[" + ", ".join(map(str, shape)) + "]")
    node = next(iter(m.graph.walk()))[0]
    module = node.layer.to_torch(lambda e: int(sympy.sympify(e).xreplace(m.values)))
    result = m.params()
    assert result.total.evaluate() == sum(p.numel() for p in module.parameters())
    assert result.buffers.evaluate() == sum(b.numel() for b in module.buffers())
    # include_buffers counts what state_dict() (a checkpoint) holds
    with_buffers = m.params(include_buffers=True).total.evaluate()
    assert with_buffers == sum(t.numel() for t in module.state_dict().values())
    out = module(torch.randn(*shape))
    assert tuple(int(s) for s in node.out_shape) == tuple(out.shape)


def test_counts_by_hand() -> None:
    m = one("batchnorm2d(64)", "[batch, 64, 7, 7]")
    r = m.params()
    assert r.total.evaluate() == 2 * 64  # gamma, beta
    assert r.buffers.evaluate() == 2 * 64 + 1  # running_mean, running_var, num_batches_tracked
    assert m.params(include_buffers=True).total.evaluate() == 4 * 64 + 1
    assert r.rows[0].buffers_formula == 129


def test_symbolic() -> None:
    m = symmem.parse("c, h\nmodel m(input = [batch, c, h, h]) { batchnorm2d(c) }\n")
    c = sym("c")
    assert sympy.expand(m.params().total.expr - 2 * c) == 0
    assert sympy.expand(m.params().buffers.expr - (2 * c + 1)) == 0


def test_channel_mismatch_names_both_layers_and_shapes() -> None:
    with pytest.raises(symmem.SymmemError) as exc:
        one("conv2d conv(3, 16, 3)\nbatchnorm2d bn(32)", "[batch, 3, 10, 10]")
    msg = str(exc.value)
    assert "'conv'" in msg and "'bn'" in msg
    assert "[batch, 16, 8, 8]" in msg and "num_features = 32" in msg


def test_rank_is_checked() -> None:
    with pytest.raises(symmem.SymmemError, match=r"expects an input \[batch, C, H, W\]"):
        one("batchnorm2d(8)", "[batch, 8, 5]")
    with pytest.raises(symmem.SymmemError, match=r"\[batch, C\] or \[batch, C, L\]"):
        one("batchnorm1d(8)", "[batch, 8, 5, 5]")


def test_eps_must_be_positive() -> None:
    with pytest.raises(symmem.SymmemError, match=r"eps must be positive"):
        one("batchnorm2d(8, eps = 0)", "[batch, 8, 5, 5]")
