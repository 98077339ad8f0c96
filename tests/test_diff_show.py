"""diff (derivatives and their meaning) and leading terms, against hand derivations."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.calculus import diff, leading, meaning
from symmem.errors import OptionError
from symmem.export import quantity_latex
from symmem.model import Quantity
from symmem.symbols import sym

b, s = sym("batch"), sym("seq_len")


def test_gpt2_params_leading_term_by_hand() -> None:
    # Per GPT-2 block: attention q, k, v, o are four d x d matrices (4 d^2) and the MLP two
    # d x 4d (8 d^2): 12 d^2 per layer, so 12 * n_layers * d_model^2 is the only degree-3 term
    # of the parameter count.
    # At the defaults: 12 * 12 * 768^2 = 84,934,656 against the exact 124,439,808 (transformers'
    # GPT2LMHeadModel): the leading term is 31.75% low (the 50,257 x 768 embedding is 38.6M).
    m = symmem.load("gpt2")
    lead = leading(m.params().total)
    d, L = m.symbols["d_model"], m.symbols["n_layers"]
    assert sympy.expand(lead.expr - 12 * L * d**2) == 0
    assert lead.degree == 3
    assert (lead.exact_value, lead.leading_value) == (124_439_808, 84_934_656)
    assert lead.relative_error == pytest.approx(84_934_656 / 124_439_808 - 1)


def test_leading_in_chosen_symbols() -> None:
    # in d_model alone: 12 * 12 * d^2 = 144 d^2
    m = symmem.load("gpt2")
    lead = leading(m.params().total, ["d_model"])
    assert lead.expr == 144 * m.symbols["d_model"] ** 2


def test_leading_of_eager_attention_memory_is_quadratic_in_seq_len() -> None:
    m = symmem.load("gpt2", free=["batch", "seq_len"])
    mem = m.memory(mode="train", attention="eager").total
    lead = leading(
        mem,
        ["batch", "seq_len"],
        at={**m.values, m.symbols["batch"]: 8, m.symbols["seq_len"]: 1024},
    )
    assert lead.degree == 3
    assert sympy.degree(lead.expr, m.symbols["seq_len"]) == 2
    assert lead.relative_error is not None and -1 < lead.relative_error < 0


def test_leading_refuses_non_polynomials() -> None:
    quantity = Quantity(sympy.floor(s / 3) * b, {}, {"batch": b, "seq_len": s})
    with pytest.raises(OptionError, match="polynomial"):
        leading(quantity, ["seq_len", "batch"])


def test_gpt2_params_derivative_in_d_model_by_hand() -> None:
    # d/dd (12 L d^2 + 13 L d + d*vocab + d*n_ctx + 2 d) = 24 L d + 13 L + vocab + n_ctx + 2;
    # at the defaults 24*12*768 + 13*12 + 50,257 + 1,024 + 2 = 221,184 + 51,439 = 272,623
    m = symmem.load("gpt2")
    dq = diff(m.params().total, "d_model")
    assert dq.evaluate() == 272_623


def test_derivative_follows_dependent_defaults() -> None:
    # d_ff = 4 * d_model: with d_model free, the derivative counts the MLP's growth too
    text = (
        "d_model = 8\n"
        "d_ff = 4 * d_model\n"
        "model m(input = [batch, d_model]) {\n"
        "  linear(d_model, d_ff, bias = false)\n"
        "}\n"
    )
    m = symmem.parse(text, free=["d_model"])
    # params = d_model * d_ff = 4 d^2; derivative 8 d = 64 at d = 8
    assert diff(m.params().total, "d_model").evaluate(d_model=8) == 64


def test_memory_derivative_in_batch_is_the_cost_of_one_more_sample() -> None:
    # memory is linear in batch (sdpa attention), so d/d batch equals total(b + 1) - total(b)
    # exactly
    m = symmem.load("gpt2", free=["batch"])
    total = m.memory(mode="train").total
    slope = diff(total, "batch").evaluate()
    assert slope == total.evaluate(batch=9) - total.evaluate(batch=8)


def test_mixed_partial() -> None:
    quantity = Quantity(10 * b * s + s**2, {}, {"batch": b, "seq_len": s})
    assert diff(quantity, "batch", "seq_len").expr == 10
    assert diff(quantity, "seq_len", "seq_len").expr == 2


def test_diff_unknown_symbol() -> None:
    quantity = Quantity(b, {}, {"batch": b})
    with pytest.raises(OptionError, match="unknown symbol 'bach'"):
        diff(quantity, "bach")


def test_meanings() -> None:
    assert meaning(["batch"]) == "bytes per extra sample"
    assert meaning(["seq_len"]) == "bytes per extra token of context"
    assert meaning(["d_model"], "params") == "parameters per unit of d_model"
    assert meaning(["batch", "seq_len"]) == "bytes per extra sample per extra token of context"


def test_quantity_latex() -> None:
    m = symmem.load("gpt2")
    assert quantity_latex(m.params().total).startswith(r"12 \cdot d_{model}^{2} \cdot n_{layers}")
