"""solve: the largest v with total(v) <= budget < total(v + 1), checked with exact integers.

Synthetic quantities are built directly from sympy with the expected answer
derived by hand beside each test; model quantities are checked against
``Quantity.evaluate`` (sympy substitution, a separate code path from the
solver's own evaluator).
"""

from __future__ import annotations

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symmem
from symmem.errors import OptionError
from symmem.model import Quantity
from symmem.remedies import remedies
from symmem.solve import SolveResult, default_range, frontier, solve
from symmem.symbols import sym

b, s, d = sym("batch"), sym("seq_len"), sym("d_model")
SYMS = {"batch": b, "seq_len": s, "d_model": d}


def q(expr: sympy.Expr, **values: int) -> Quantity:
    return Quantity(
        sympy.sympify(expr), {SYMS[k]: sympy.Integer(v) for k, v in values.items()}, SYMS
    )


def exact(quantity: Quantity, name: str, v: int, **fixed: int) -> int | sympy.Rational:
    out = quantity.evaluate(**{name: v, **fixed})
    return out if isinstance(out, int) else sympy.Rational(out)


def check(r: SolveResult, quantity: Quantity, **fixed: int) -> None:
    assert r.value is not None
    at_v, at_next = (
        exact(quantity, r.symbol, r.value, **fixed),
        exact(quantity, r.symbol, r.value + 1, **fixed),
    )
    assert at_v <= r.budget_bytes < at_next
    assert r.bytes_at_value == at_v and r.bytes_at_next == at_next


def test_linear_by_hand() -> None:
    # 1000*batch + 24 <= 10,000  <=>  batch <= 9976/1000 = 9.976  ->  9: 9,024 <= 10,000 < 10,024
    quantity = q(1000 * b + 24)
    r = solve(quantity, 10_000, "batch")
    assert (r.value, r.bytes_at_value, r.bytes_at_next, r.method) == (9, 9024, 10024, "closed-form")
    assert r.headroom == 976


def test_linear_equality_at_the_budget() -> None:
    # 1000*batch + 24 = 10,024 at batch = 10: equal to the budget still fits
    r = solve(q(1000 * b + 24), 10_024, "batch")
    assert r.value == 10


def test_quadratic_by_hand() -> None:
    # 3 s^2 + 5 s + 7 <= 10^6: s = (-5 + sqrt(25 - 12*(7 - 10^6))) / 6 = (-5 + sqrt(11,999,941)) / 6
    # = (-5 + 3464.093...) / 6 = 576.52 -> 576: 3*331,776 + 2,880 + 7 = 998,215 <= 10^6;
    # 577: 3*332,929 + 2,885 + 7 = 1,001,679 > 10^6
    quantity = q(3 * s**2 + 5 * s + 7)
    r = solve(quantity, 10**6, "seq_len")
    assert (r.value, r.bytes_at_value, r.bytes_at_next, r.method) == (
        576,
        998_215,
        1_001_679,
        "closed-form",
    )


def test_cubic_uses_sympy_over_the_real_twin() -> None:
    # batch^3 + 1 <= 10^6 + 1 exactly at batch = 100
    r = solve(q(b**3 + 1), 10**6 + 1, "batch")
    assert (r.value, r.method) == (100, "closed-form")
    r = solve(q(b**3 + 1), 10**6, "batch")
    assert r.value == 99


def test_bisection_with_ceiling_by_hand() -> None:
    # 4096*ceil(batch/8) + 100 <= 50,000  <=>  ceil(batch/8) <= floor(49,900/4096) = 12  <=>  batch
    # <= 96;
    # 96: 4096*12 + 100 = 49,252; 97: 4096*13 + 100 = 53,348
    quantity = q(4096 * sympy.ceiling(b / 8) + 100)
    r = solve(quantity, 50_000, "batch")
    assert (r.value, r.bytes_at_value, r.bytes_at_next, r.method) == (
        96,
        49_252,
        53_348,
        "bisection",
    )


def test_bisection_with_max() -> None:
    # Max(10*batch, 1000) + 5 <= 2000: 10*batch <= 1995 -> batch = 199
    r = solve(q(sympy.Max(10 * b, 1000) + 5), 2000, "batch")
    assert (r.value, r.method) == (199, "bisection")
    check(r, q(sympy.Max(10 * b, 1000) + 5))


def test_rational_coefficients_are_exact() -> None:
    # int4 weights: batch/2 + 3 <= 10  <=>  batch <= 14 (14/2 + 3 = 10; 15/2 + 3 = 10.5)
    r = solve(q(b / 2 + 3), 10, "batch")
    assert r.value == 14
    assert r.as_dict()["bytes_at_next"] == 10.5


def test_exact_beyond_float_precision() -> None:
    # (10^15 + 1)*batch <= 10^30: (10^15+1)(10^15-1) = 10^30 - 1 fits, (10^15+1)*10^15 = 10^30 +
    # 10^15 does not
    r = solve(q((10**15 + 1) * b), 10**30, "batch")
    assert r.value == 10**15 - 1


def test_constant_memory_every_value_fits() -> None:
    r = solve(q(sympy.Integer(5) + 0 * b), 100, "batch")
    assert r.unbounded and r.fits and r.method == "constant"


def test_constant_memory_nothing_fits() -> None:
    r = solve(q(sympy.Integer(500)), 100, "batch")
    assert not r.fits and r.value is None and r.headroom == -400


def test_nothing_fits_reports_the_excess() -> None:
    r = solve(q(1000 * b + 24), 500, "batch")
    assert r.value is None and r.bytes_at_value == 1024 and r.headroom == -524


def test_budget_string() -> None:
    r = solve(q(10**9 * b), "24GB", "batch")
    assert (r.value, r.budget_bytes) == (24, 24 * 10**9)
    r = solve(q(10**9 * b), "24GiB", "batch")
    assert r.value == 25  # 24 GiB = 25,769,803,776 bytes


def test_unknown_symbol() -> None:
    with pytest.raises(OptionError, match="unknown symbol 'bach'.*did you mean 'batch'"):
        solve(q(b), 10, "bach")


def test_other_symbols_need_values() -> None:
    with pytest.raises(OptionError, match="other symbols have no value.*seq_len"):
        solve(q(b * s), 10, "batch")


def test_defaults_of_other_symbols_are_used() -> None:
    # batch * seq_len * 2 with seq_len = 1024: batch <= 10^6 / 2048 = 488.28 -> 488
    r = solve(q(2 * b * s, seq_len=1024), 10**6, "batch")
    assert r.value == 488


@settings(max_examples=200, deadline=None)
@given(
    a=st.integers(0, 10**6),
    c1=st.integers(1, 10**9),
    c0=st.integers(0, 10**12),
    budget=st.integers(1, 10**18),
)
def test_random_quadratics_are_exact(a: int, c1: int, c0: int, budget: int) -> None:
    quantity = q(a * b**2 + c1 * b + c0)
    r = solve(quantity, budget, "batch")
    f = lambda v: a * v * v + c1 * v + c0  # noqa: E731 - exact Python ints
    if f(1) > budget:
        assert r.value is None
    else:
        assert r.value is not None and f(r.value) <= budget < f(r.value + 1)


@settings(max_examples=100, deadline=None)
@given(k=st.integers(1, 64), c=st.integers(1, 10**6), budget=st.integers(1, 10**9))
def test_random_floor_expressions_are_exact(k: int, c: int, budget: int) -> None:
    quantity = q(c * sympy.floor((b + k - 1) / k) + c * b)
    r = solve(quantity, budget, "batch")
    f = lambda v: c * ((v + k - 1) // k) + c * v  # noqa: E731
    if f(1) > budget:
        assert r.value is None
    else:
        assert r.value is not None and f(r.value) <= budget < f(r.value + 1)


# ------------------------------------------------------------------ real models
@pytest.fixture(scope="module")
def gpt2() -> symmem.Model:
    return symmem.load("gpt2", free=["batch"])


def test_gpt2_training_batch_is_exact(gpt2: symmem.Model) -> None:
    mem = gpt2.memory(mode="train")
    r = solve(mem.total, "24GB", "batch")
    check(r, mem.total)
    assert r.value is not None and r.value >= 1


def test_gpt2_eager_seq_len_is_quadratic_and_exact() -> None:
    m = symmem.load("gpt2", free=["seq_len"])
    mem = m.memory(mode="train", attention="eager")
    r = solve(mem.total, "24GiB", "seq_len")
    assert r.method == "closed-form"
    check(r, mem.total)


def test_gpt2_params_for_d_model_by_hand() -> None:
    # params(d) = 144 d^2 + 51,439 d for GPT-2 with its other defaults (12 d^2 + 13 d per layer x 12
    # layers,
    # d*(vocab + n_ctx + 2) = 51,283 d + ... : 13*12 + 50,257 + 1,024 + 2 = 51,439); 144 d^2 +
    # 51,439 d <= 10^9:
    # d = (-51,439 + sqrt(51,439^2 + 576*10^9)) / 288 = 2462.4 -> 2462
    m = symmem.load("gpt2", free=["d_model"])
    r = solve(m.params().total, 10**9, "d_model")
    assert r.largest_fitting == 2462
    # ... but GPT-2's 12 heads must divide d_model (head_dim whole, as --set d_model=2462
    # refuses): the answer is the largest multiple of 12 below, 2460 (issue 13)
    assert r.value == 2460
    assert r.bytes_at_value == 144 * 2460**2 + 51_439 * 2460
    assert "head_dim" in (r.refused or "")


# ------------------------------------------------------------------ frontier
def test_frontier_matches_brute_force() -> None:
    # 10*batch*seq_len + seq_len^2 <= 10^6
    quantity = q(10 * b * s + s**2)
    fr = frontier(quantity, 10**6, "batch", "seq_len", [16, 64, 256, 1000, 1024])
    for w, r in fr.rows:
        if w * w + 10 * w > 10**6:
            assert r.value is None
            continue
        brute = max(v for v in range(1, 10**5) if 10 * v * w + w * w <= 10**6)
        assert r.value == brute
    assert [w for w, _ in fr.rows] == [16, 64, 256, 1000, 1024]
    assert fr.rows[-1][1].value is None  # 1024^2 > 10^6


def test_frontier_same_symbol_twice() -> None:
    with pytest.raises(OptionError, match="twice"):
        frontier(q(b), 10, "batch", "batch")


def test_default_range_is_powers_of_two_to_four_times_the_default() -> None:
    assert default_range(q(b * s, seq_len=1024), "seq_len") == [
        2**i for i in range(13)
    ]  # up to 4096


# ------------------------------------------------------------------ remedies
def test_remedies_each_fit() -> None:
    m = symmem.load("llama2-7b", free=["batch"])
    budget = 8 * 10**9
    base = m.memory(mode="infer")
    assert not solve(base.total, budget, "batch").fits  # 6.7B fp32 weights alone are 27 GB
    fixes = remedies(m, budget, "batch", mode="infer")
    assert fixes
    for fix in fixes:
        total = m.memory(mode="infer", **fix.options).total
        v = fix.result.value
        assert v is not None
        assert total.evaluate(batch=v) <= budget < total.evaluate(batch=v + 1)
