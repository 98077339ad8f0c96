"""symmem.torch_build: a LayerGraph as a real torch.nn.Module.

Expected values are hand derivations (comments) or PyTorch's own counts.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import symmem  # noqa: E402
from symmem.torch_build import build, make_inputs  # noqa: E402


def _built(text, **sets):
    m = symmem.parse(text, set_values=sets)
    return m, build(m.graph, m.values)


def test_repeat_makes_independent_copies():
    # repeat 3 { linear(4, 4) }: three separate 4x4 + 4 layers = 60 parameters
    m, b = _built("model m(input = [batch, 4]) { repeat 3 blk { linear fc(4, 4) } }", batch=2)
    assert sum(p.numel() for p in b.module.parameters()) == 60
    copies = b.instances["blk.fc"]
    assert len(copies) == 3 and copies[0].weight is not copies[1].weight


def test_residual_adds_input():
    # residual { linear } with the linear's weight and bias zero: the output is the input
    m, b = _built("model m(input = [batch, 4]) { residual { linear fc(4, 4) } }", batch=2)
    fc = b.instances["residual.fc"][0]
    torch.nn.init.zeros_(fc.weight)
    torch.nn.init.zeros_(fc.bias)
    x = torch.randn(2, 4)
    assert torch.equal(b.module(x), x)


def test_parallel_sums_branches_and_empty_branch_is_identity():
    # parallel { linear } { }: fc(x) + x
    m, b = _built("model m(input = [batch, 4]) { parallel { linear fc(4, 4) } { } }", batch=2)
    fc = b.instances["parallel.0.fc"][0]
    x = torch.randn(2, 4)
    assert torch.allclose(b.module(x), fc(x) + x)


def test_tied_weights_are_one_parameter():
    # GPT-2: the LM head is the token embedding's table; PyTorch counts it once
    m = symmem.load(
        "gpt2", set_values={"d_model": 32, "n_layers": 1, "n_heads": 2, "vocab": 100, "n_ctx": 16}
    )
    b = build(m.graph, m.values)
    assert b.instances["lm_head"][0].weight is b.instances["wte"][0].weight
    unique = {id(p): p.numel() for p in b.module.parameters()}
    assert sum(unique.values()) == m.params().total.evaluate()


def test_attention_impl_from_policy_and_dropout_off():
    m = symmem.parse(
        "model m(input = [batch, seq_len, 16]) { attention a(16, heads = 4, dropout = 0.5) }"
    )
    b = build(
        m.graph,
        {**m.values, m.symbol("batch"): 1, m.symbol("seq_len"): 4},
        attention="eager",
        dropout=False,
    )
    att = b.instances["a"][0]
    assert att.impl == "eager" and att.dropout == 0.0


def test_symbolic_dropout_probability_gets_its_value():
    m = symmem.parse("p = 0.25\nmodel m(input = [batch, 4]) { linear(4, 4); dropout d(p) }")
    b = build(m.graph, {**m.values, m.symbol("batch"): 1})
    assert b.instances["d"][0].p == 0.25


def test_inputs_are_ids_for_an_embedding_model():
    m = symmem.parse(
        "model m(input = [batch, seq_len]) { embedding(10, 4); linear(4, 3) }",
        set_values={"batch": 2, "seq_len": 5},
    )
    x, labels = make_inputs(m.graph, m.values, torch.float32)
    assert x.dtype == torch.int64 and tuple(x.shape) == (2, 5) and int(x.max()) < 10
    assert tuple(labels.shape) == (2, 5) and int(labels.max()) < 3


def test_missing_value_is_a_user_error():
    from symmem.errors import SymmemError

    m = symmem.parse("d\nmodel m(input = [batch, d]) { linear(d, d) }")
    with pytest.raises(SymmemError, match="needs a value"):
        build(m.graph, m.values)
