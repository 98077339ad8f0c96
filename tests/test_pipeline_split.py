"""Uneven pipeline splits (Megatron-LM's get_num_layers_to_build, transformer_block.py at
d98e8a64dd): --decoder-first/last-pipeline-num-layers give the first and last stage their
own layer counts, the stages between split the rest evenly (asserted whole); without them
every stage holds num_layers / pp (asserted whole), which symmem models as pp dividing each repeat
(the even formulas, valid for every pp).  The repeats' iterations are the layer
list, in model order, cut into consecutive runs.  Oracles: hand derivations beside each test."""

from __future__ import annotations

from typing import Any

import pytest

import symmem
from symmem.errors import OptionError
from symmem.memory.fast import MemoryEvaluator
from symmem.parallel import stage_in_flight

# fp32 weights, no optimizer state involved in the checks on weights: 4 bytes per parameter
FP32: dict[str, Any] = {"precision": "fp32", "overhead": 0}
# d = 8: repeat a holds 3 layers of d x d (64 params), repeat b 2 layers of d x 2d (128 params)
TWO = """d = 8
batch = 4
model m(input = [batch, d]) {
  repeat 3 a { linear x(d, d, bias = false) }
  repeat 2 b { linear y(d, d, bias = false); linear z(d, d, bias = false) }
}
"""


def _weights(**kw: Any) -> int:
    m = symmem.parse(TWO)
    return int(m.memory(**FP32, **kw).bytes()["weights"])


def test_first_and_last_given() -> None:
    # pp = 2, first stage 3 layers: stage 0 = a x 3 = 192 params, stage 1 = b x 2 = 256 params;
    # the busiest: 256 x 4 bytes = 1024
    assert _weights(pp=2, pp_first_layers=3) == 1024
    # first 1: stage 0 = a = 64, stage 1 = a a b b = 128 + 256 = 384 params -> 1536 bytes
    assert _weights(pp=2, pp_first_layers=1) == 1536
    # pp = 3, last 1: 4 layers over 2 stages -> 2 each: (a a) 128, (a b) 192, (b) 128 -> 768
    assert _weights(pp=3, pp_last_layers=1) == 768
    # first 1, last 2, pp = 3: (a) 64, (a a) 128, (b b) 256 -> 1024
    assert _weights(pp=3, pp_first_layers=1, pp_last_layers=2) == 1024


def test_even_total_over_uneven_repeats() -> None:
    # pp = 5 divides the 5 layers but neither 3 nor 2: refused without a stage's own count (the
    # even formulas need pp to divide each repeat); Megatron's one layer a stage is written
    # --pp-first-layers 1 (4 left over 4 stages): the busiest holds one b, 128 params -> 512
    with pytest.raises(OptionError, match="does not divide the 3 iterations"):
        _weights(pp=5)
    assert _weights(pp=5, pp_first_layers=1) == 512


def test_refused_splits() -> None:
    with pytest.raises(OptionError, match="does not divide the 3 iterations"):
        _weights(pp=2)
    with pytest.raises(OptionError, match="cannot split"):
        _weights(pp=4, pp_first_layers=1)  # 4 left over 3 stages
    with pytest.raises(OptionError, match="more layers or stages"):
        _weights(pp=2, pp_first_layers=6)
    with pytest.raises(OptionError, match="on no stage"):
        _weights(pp=2, pp_first_layers=1, pp_last_layers=1)


def test_activations_per_stage() -> None:
    # 1F1B: stage s holds min(m, pp - s) micro-batches (Narayanan et al. 2021); interleaved with
    # v chunks: min(m v, 2 (pp - s - 1) + (v - 1) pp + 1) / v (Megatron's warm-up count + 1)
    assert [stage_in_flight(4, 8, 1, 0, 0, s) for s in range(4)] == [4, 3, 2, 1]
    # s = 0 with v = 2, pp = 4: (4 * 2 + 4 - 1) / 2 = 11/2, as in_flight's pp (1 + 3 / 8)
    assert stage_in_flight(4, 8, 2, 1, 0, 0) == pytest.approx(5.5)
    assert stage_in_flight(4, 8, 2, 1, 0, 1) == pytest.approx(4.5)  # (2*2 + 4 + 1) / 2
    assert stage_in_flight(4, 8, 1, 0, 1, 3) == 5  # DualPipe: pp + 1 everywhere (Table 2)
    # pp = 2, first 1: stage 0 keeps 2 micro-batches of (a), stage 1 one of (a a b b).  A linear
    # saves its input (batch x d fp32 = 4 x 8 x 4 = 128 bytes): stage 0 = 2 x 128 = 256,
    # stage 1 = 6 x 128 = 768 -> 768 (plus nothing else: no loss on a plain linear stack)
    # stage 1 = 6 x 128 = 768; first 3 instead: stage 0 = 2 x 3 x 128 = 768, stage 1 = 4 x 128
    m = symmem.parse(TWO)
    plain = {**FP32, "loss": "none", "dropout": False}
    assert m.memory(**plain).bytes()["activations"] == 7 * 128  # no pipeline: every layer once
    assert m.memory(**plain, pp=2, pp_first_layers=1).bytes()["activations"] == 768
    assert m.memory(**plain, pp=2, pp_first_layers=3).bytes()["activations"] == 768
    assert (
        m.memory(**plain, pp=2, pp_first_layers=4).bytes()["activations"] == 2 * 5 * 128
    )  # stage 0: a a a b = 5 linears


def test_dualpipe_pairs_stages() -> None:
    # DualPipe: rank d holds stage d and stage pp - 1 - d.  pp = 3, last 1: stages (a a) 128,
    # (a b) 192, (b) 128 params; ranks (0, 2) = 256 and (1, 1) = 384 params -> 1536 bytes
    assert _weights(pp=3, pp_last_layers=1, schedule="dualpipe") == 1536


def test_fast_evaluator_equals_build() -> None:
    m = symmem.parse(TWO)
    ev = MemoryEvaluator(m.graph, m.values)
    for kw in (
        {"pp": 2, "pp_first_layers": 3},
        {"pp": 3, "pp_last_layers": 1},
        {"pp": 5, "pp_first_layers": 1},
        {"pp": 3, "pp_last_layers": 1, "schedule": "dualpipe"},
    ):
        want = m.memory(**FP32, **kw).bytes()
        got = ev.bytes(**FP32, **kw)
        assert {k: got[k] for k in want} == dict(want)


def test_an_uneven_split_holds_the_layer_count_at_its_value() -> None:
    # the split (here 2 + 2 + 2 of n = 6 layers with --pp-first-layers 2) is decided at
    # n = 6, so the formulas hold n fixed there: the busiest stage's weights are 2 layers of
    # d x d fp32 = 2 x 64 x 4 = 512 bytes, with no n left in them (a formula (2/6) x n x 256
    # would be right only at n = 6, and its derivative in n wrong everywhere)
    text = "d = 8\nn = 6\nmodel m(input = [4, d]) { repeat n { linear(d, d, bias = false) } }\n"
    m = symmem.parse(text)
    weights = m.memory(**FP32, pp=3, pp_first_layers=2).weights
    assert weights.evaluate() == 512
    assert "n" not in {str(s) for s in weights.expr.free_symbols}
    # at another n the split is decided again: 12 layers, 2 on the first stage, 5 and 5 after
    m12 = symmem.parse(text, set_values={"n": 12})
    assert m12.memory(**FP32, pp=3, pp_first_layers=2).weights.evaluate() == 5 * 256
