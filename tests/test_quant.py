"""Quantized matrix bytes: the block-scale ceiling built without sympy's evaluation.

``quant._ceiling`` must be the expression ``sympy.ceiling`` evaluates to, for the quotients
of sizes the fp8 block formats divide (positive integer symbols over a block of 128), and
the same number once values are put in.
"""

from __future__ import annotations

import itertools

import pytest
import sympy

from symmem.quant import REGISTRY, _ceiling
from symmem.values import substitute

d, h, r, k = sympy.symbols("d_model n_heads kv_lora_rank k", positive=True, integer=True)
x = sympy.Symbol("x", positive=True)

QUOTIENTS = [
    d / 128,
    3 * d / 128,
    h * (d + r) / 128,
    (r + 64) / 128,
    (128 * k + d) / 128,  # a whole term comes out: k + ceiling(d/128)
    256 * k / 128,  # whole
    sympy.Integer(7168) / 128,
    sympy.Integer(7169) / 128,
    d / (128 * k),  # a tensor-parallel degree held as a symbol
    x / 128,  # real, not known whole
]


@pytest.mark.parametrize("q", QUOTIENTS, ids=str)
def test_ceiling_is_sympys(q: sympy.Expr) -> None:
    ours = _ceiling(q)
    assert ours == sympy.ceiling(q)
    for values in itertools.product((1, 127, 128, 129, 7168), (1, 3, 16)):
        at = {
            d: values[0],
            h: values[1],
            r: values[0] + 1,
            k: values[1],
            x: sympy.Rational(values[0], 3),
        }
        assert substitute(ours, at) == sympy.ceiling(substitute(q, at))


def test_block_bytes_are_whole_scales() -> None:
    """DeepSeek's 128 x 128 fp8 blocks: one fp32 scale per block, partial blocks rounded up
    (``weight_scale_inv`` of shape ceil(out/128) x ceil(in/128)): 7168 x 1536 has 56 x 12
    blocks, 7169 x 1536 has 57 x 12."""
    block = next(q for q in REGISTRY if q.block == (128, 128))
    for out_f, groups in ((7168, 56 * 12), (7169, 57 * 12)):
        got = block.matrix_bytes(sympy.Integer(out_f), sympy.Integer(1536))
        assert got == out_f * 1536 * 1 + groups * 4  # 1-byte fp8 weights, 4-byte fp32 scales
        symbolic = block.matrix_bytes(d, sympy.Integer(1536))
        assert substitute(symbolic, {d: out_f}) == got
