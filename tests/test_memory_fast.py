"""Fast re-evaluation (symmem.memory.MemoryEvaluator) equals the full build, exactly.

The evaluator builds each structure once with the numeric options as symbols and
compiles it; these tests hold it to the full symbolic build (symmem.memory.build,
itself pinned to published figures in tests/test_memory.py) on every bundled model
and many option sets, integer for integer.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symmem
from symmem.errors import OptionError
from symmem.memory import MemoryEvaluator
from symmem.memory.fast import compile_exact
from symmem.memory.placement import bounds, largest
from symmem.symbols import knob, sym

MODELS = ["gpt2", "bert-base", "llama3.1-8b", "mixtral-8x7b", "deepseek-v3", "resnet50", "lstm_lm"]

OPTION_SETS = [
    {},
    {"precision": "mixed-bf16", "tp": 2, "zero": 1, "dp": 8},
    {
        "precision": "mixed-fp16",
        "checkpointing": "full",
        "zero": 3,
        "dp": 4,
        "grad_fp32_copy": True,
    },
    {"precision": "bf16", "checkpointing": "selective", "optimizer": "adafactor"},
    {"precision": "mixed-bf16", "pp": 2, "micro_batches": 4, "tp": 2, "sp": True},
    {"optimizer": "adam8bit", "device": "cpu", "dropout": False},
    {"mode": "infer"},
    {"mode": "infer", "kv_dtype": "fp8", "tp": 2},
    {"mode": "infer", "quant": "int4", "precision": "fp16"},
    {"mode": "infer", "quant": "nf4", "double_quant": True, "lora_rank": 8},
    {"lora_rank": 16, "quant": "nf4", "precision": "mixed-bf16"},
    # training at scale (issue 14)
    {"precision": "mixed-bf16", "cp": 2, "tp": 2, "sp": True, "zero": 3, "dp": 4},
    {"precision": "mixed-bf16", "cp": 2, "cp_comm": "ulysses", "attention": "flash"},
    {"precision": "mixed-bf16", "pp": 2, "virtual_stages": 2, "micro_batches": 8},
    {"precision": "mixed-bf16", "pp": 2, "schedule": "dualpipe", "zero": 1, "dp": 2},
    {"precision": "mixed-bf16", "pp": 2, "schedule": "dualpipev", "checkpointing": "full"},
    {"precision": "mixed-bf16", "ep": 2, "etp": 1, "tp": 2, "edp": 2, "zero": 1, "dp": 4},
    {"precision": "mixed-fp16", "zero": 2, "dp": 2, "offload": "optimizer", "gpus_per_node": 2},
    {"precision": "mixed-bf16", "zero": 3, "dp": 8, "offload": "optimizer,params"},
    {"precision": "mixed-bf16", "checkpointing": "full", "offload": "activations"},
    {"zero": 3, "dp": 2, "offload": "optimizer,params", "offload_device": "nvme"},
]


@pytest.fixture(scope="module", params=MODELS)
def loaded(request: pytest.FixtureRequest) -> tuple[symmem.Model, MemoryEvaluator]:
    m = symmem.load(request.param)
    return m, MemoryEvaluator(m.graph, m.values)


@pytest.mark.parametrize(
    "options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_fast_equals_full_build(
    loaded: tuple[symmem.Model, MemoryEvaluator], options: dict[str, Any]
) -> None:
    m, ev = loaded
    try:
        expected = m.memory(**options).bytes()
    except OptionError as exc:  # the model refuses these options: so must the evaluator
        with pytest.raises(OptionError, match=str(exc).split(":")[0]):
            ev.bytes(**options)
        return
    got = ev.bytes(**options)
    assert got == expected
    assert all(isinstance(v, int | Fraction) and not isinstance(v, bool) for v in got.values())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    precision=st.sampled_from(["fp32", "bf16", "mixed-bf16", "amp-bf16", "fp8"]),
    tp=st.sampled_from([1, 2, 4, 8]),
    dp=st.integers(1, 64),
    zero=st.integers(0, 3),
    checkpointing=st.sampled_from(["none", "full", "selective"]),
    pp=st.sampled_from([1, 2, 4]),
    micro=st.integers(1, 16),
)
def test_fast_equals_full_build_over_layouts(
    precision: str, tp: int, dp: int, zero: int, checkpointing: str, pp: int, micro: int
) -> None:
    m = _llama()
    options: dict[str, Any] = {
        "precision": precision,
        "tp": tp,
        "dp": dp,
        "zero": zero,
        "checkpointing": checkpointing,
        "pp": pp,
        "micro_batches": micro,
    }
    assert _evaluator().bytes(**options) == m.memory(**options).bytes()


@functools.cache
def _llama() -> symmem.Model:
    return symmem.load("llama2-7b")


@functools.cache
def _evaluator() -> MemoryEvaluator:
    m = _llama()
    return MemoryEvaluator(m.graph, m.values)


def test_fast_refuses_what_the_build_refuses() -> None:
    ev = _evaluator()
    ev.bytes(tp=2)  # the structure is compiled: the check must not depend on a fresh build
    with pytest.raises(OptionError, match="tp = 3 does not divide n_heads = 32 of layer"):
        ev.bytes(tp=3)
    with pytest.raises(OptionError, match="unknown precision"):
        ev.bytes(precision="fp64")


def test_fast_needs_every_value() -> None:
    m = symmem.load("gpt2", free=["batch"])
    with pytest.raises(OptionError, match="batch"):
        MemoryEvaluator(m.graph, m.values).bytes()


def test_compiled_arithmetic_stays_exact() -> None:
    # 1/3 of a huge odd number: a float would lose it; Fractions keep every digit
    x = knob("tp")
    fn = compile_exact({"v": (10**30 + 1) / x + sympy.Rational(1, 2) * x}, ("tp",))
    assert fn(3) == (Fraction(10**30 + 1, 3) + Fraction(3, 2),)
    fn = compile_exact({"v": sympy.Max(7 / x, 2) + sympy.floor(x / 3)}, ("tp",))
    assert fn(2) == (Fraction(7, 2) + 0,)


def test_largest_drops_only_what_is_bounded_everywhere() -> None:
    b, s, d = sym("batch"), sym("seq_len"), sym("d_model")
    # 12bds + 4bs >= 8bs for every d >= 1 (not for real d < 1/3: integers matter)
    assert bounds(12 * b * d * s + 4 * b * s, 8 * b * s)
    assert not bounds(8 * b * s, 12 * b * d * s + 4 * b * s)
    # neither bounds the other: both stay, and the value is their max at any point
    m = largest(3 * b * s, 2 * b * d)
    assert isinstance(m, sympy.Max) and set(m.args) == {3 * b * s, 2 * b * d}
    assert m.xreplace({b: 1, s: 2, d: 5}) == 10
    # as sympy's Max decides (tests compare whole bundled models in test_memory_fast's sibling)
    assert largest(6422528 * b, 401408 * b + 16384, 802816 * b + 8192) == 6422528 * b
    assert sympy.Max(6422528 * b, 401408 * b + 16384, 802816 * b + 8192) == 6422528 * b


_B, _S, _D = sym("batch"), sym("seq_len"), sym("d_model")
_MONOMIALS = (
    sympy.Integer(1),
    _B,
    _B * _S,
    _B * _S * _D,
    _S**2,
    _B / knob("tp"),
    _B * _S / _D,
    _D / (_S * _B),
    _D * sympy.Symbol("r", positive=True),  # positive, not an integer: never shifted
)
_TERMS = st.lists(
    st.tuples(st.sampled_from(_MONOMIALS), st.fractions(-20, 20, max_denominator=4)),
    min_size=1,
    max_size=5,
).map(lambda ts: sympy.Add(*[sympy.Rational(c.numerator, c.denominator) * m for m, c in ts]))


@settings(max_examples=150, deadline=None)
@given(_TERMS, _TERMS)
def test_bounds_on_coefficients_answers_as_the_sympy_proof(a: sympy.Expr, b: sympy.Expr) -> None:
    # bounds() decides two (Laurent) polynomials on coefficient dictionaries (a cold-start
    # cost: tens of ms a model); the answer must be the sympy proof's, term for term
    from symmem.memory import placement

    fast = placement._bounds_polynomial(a, b)
    assert fast is not None
    original = placement.bounds.__wrapped__
    saved = placement._bounds_polynomial
    try:
        placement._bounds_polynomial = lambda a, b: None
        assert fast == original(a, b)
    finally:
        placement._bounds_polynomial = saved


@pytest.mark.parametrize("name", ["gpt2", "llama3.1-8b", "mixtral-8x7b", "resnet50"])
@pytest.mark.parametrize(
    "options", [{"mode": "infer"}, {"checkpointing": "full"}, {"pp": 2, "tp": 2}]
)
def test_largest_prunes_as_sympy_max_does(name: str, options: dict[str, Any]) -> None:
    # every Max in a bundled model's memory is already what sympy's own Max makes of its arguments
    try:
        result = symmem.load(name).memory(**options)
    except OptionError as exc:  # ResNet-50's stages repeat 2, 3, 5, 2 blocks: pp = 2 is uneven
        assert name == "resnet50" and "pp = 2 does not divide" in str(exc)
        return
    for q in result.components().values():
        for mx in q.expr.atoms(sympy.Max):
            assert sympy.Max(*mx.args) == mx


def test_a_fractional_byte_count_evaluates_to_its_rational() -> None:
    # bf16 gradients of Llama-2-7B over tp=8 x dp=47 with ZeRO-2 and two pipeline stages: the
    # busiest stage's share is 842539008/47 bytes, exactly (it once evaluated to
    # 94478400000*2**(43/78)*3**(49/78)*5**(1/3)*7**(10/13)/117649 through sympy.nsimplify)
    m = _llama()
    options: dict[str, Any] = {
        "precision": "bf16",
        "tp": 8,
        "dp": 47,
        "zero": 2,
        "pp": 2,
        "micro_batches": 1,
    }
    q = m.memory(**options).gradients
    direct = q.expr.xreplace(m.values).xreplace(m.values)  # sympy's own exact arithmetic
    assert direct == sympy.Rational(842539008, 47)
    assert q.evaluate() == direct
    assert _evaluator().bytes(**options)["gradients"] == Fraction(842539008, 47)


def test_offload_and_node_size_change_the_answer_within_one_structure() -> None:
    # offload and gpus_per_node are knobs, not structure: one compiled form answers both ways
    m = _llama()
    ev = MemoryEvaluator(m.graph, m.values)
    base: dict[str, Any] = {"precision": "mixed-bf16", "zero": 3, "dp": 8}
    for extra in (
        {},
        {"offload": "optimizer"},
        {"offload": "optimizer,params"},
        {"gpus_per_node": 4},
    ):
        assert ev.bytes(**base, **extra) == m.memory(**base, **extra).bytes(), extra
