"""rnn / lstm / gru: parameter counts and output shapes against torch.nn.RNN/LSTM/GRU
(multi-layer, bidirectional, without bias), the Keras one-bias convention derived by hand,
and the seed formula 4 (d_in d_hidden + d_hidden^2 + d_hidden) symbolically."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sympy
from typer.testing import CliRunner

import symmem
from symmem.activations import ActPolicy, entries_bytes, saved_tensors
from symmem.cli import app
from symmem.layers.rnn import GRU, LSTM
from symmem.symbols import sym


def one(text: str, input_shape: str = "[batch, seq_len, 16]") -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{\n{text}\n}}\n")


def count(text: str, input_shape: str = "[batch, seq_len, 16]") -> int:
    value = one(text, input_shape).params().total.evaluate()
    assert isinstance(value, int)
    return value


# ---------------------------------------------------------------- pinned numbers


def test_lstm_pytorch_vs_keras() -> None:
    torch = pytest.importorskip("torch")
    # nn.LSTM(16, 32): W_ih (128, 16) + W_hh (128, 32) + b_ih (128) + b_hh (128) = 6,400
    assert sum(p.numel() for p in torch.nn.LSTM(16, 32).parameters()) == 6400
    assert count("lstm(16, 32)") == 6400
    # Keras LSTM(32) on 16 inputs: kernel (16, 128) + recurrent_kernel (32, 128) + bias (128)
    # = 4*(16*32 + 32*32 + 32) = 4*1568 = 6,272 (one bias vector per gate)
    assert count("lstm(16, 32, convention = keras)") == 6272


def test_gru_conventions() -> None:
    torch = pytest.importorskip("torch")
    # nn.GRU(16, 32): 3*(16*32 + 32*32 + 2*32) = 3*1600 = 4,800
    assert sum(p.numel() for p in torch.nn.GRU(16, 32).parameters()) == 4800
    assert count("gru(16, 32)") == 4800
    # Keras GRU(32), reset_after = True (its default): bias of shape (2, 96) -> the same 4,800
    assert count("gru(16, 32, convention = keras)") == 4800
    assert count("gru(16, 32, convention = keras, reset_after = true)") == 4800
    # Keras GRU(32, reset_after=False): one bias (96): 3*(16*32 + 32*32 + 32) = 3*1568 = 4,704
    assert count("gru(16, 32, convention = keras, reset_after = false)") == 4704


def test_simple_rnn_conventions() -> None:
    torch = pytest.importorskip("torch")
    # nn.RNN(16, 32): 16*32 + 32*32 + 2*32 = 1,600
    assert sum(p.numel() for p in torch.nn.RNN(16, 32).parameters()) == 1600 == count("rnn(16, 32)")
    # Keras SimpleRNN(32): kernel (16, 32) + recurrent (32, 32) + bias (32) = 1,568
    assert count("rnn(16, 32, convention = keras)") == 1568


def test_keras_stacked_and_bidirectional_by_hand() -> None:
    # two stacked Keras LSTM(32) on 16 inputs: 6,272 + 4*(32*32 + 32*32 + 32) = 6,272 + 8,320
    assert count("lstm(16, 32, num_layers = 2, convention = keras)") == 14592
    # Bidirectional(LSTM(32)): two copies of the 6,272 (forward and backward layers)
    assert count("lstm(16, 32, bidirectional = true, convention = keras)") == 12544
    # ... and a second bidirectional layer reads 64 = 2*32 features: 2*4*(64*32 + 32*32 + 32)
    assert count("lstm(16, 32, 2, true, convention = keras)") == 12544 + 2 * 4 * (
        64 * 32 + 32 * 32 + 32
    )


def test_seed_formula_from_keras_convention() -> None:
    """4 (d_in d_hidden + d_hidden^2 + d_hidden): the LSTM count of the literature (one bias)."""
    d_in, d_h = sym("d_in"), sym("d_hidden")
    layer = LSTM(d_in, d_h, convention="keras")
    seed = 4 * (d_in * d_h + d_h**2 + d_h)
    assert sympy.expand(layer.params() - seed) == 0
    # PyTorch's convention is the seed plus a second bias vector per gate
    assert sympy.expand(LSTM(d_in, d_h).params() - seed - 4 * d_h) == 0
    # and through the DSL with free symbols
    m = symmem.parse(
        "d_in, d_hidden\n"
        "model m(input = [batch, seq_len, d_in]) { lstm(d_in, d_hidden, convention = keras) }\n"
    )
    assert sympy.expand(m.params().total.expr - seed) == 0


def test_gate_count_formula_symbolic_in_layers() -> None:
    n, h, L = sym("n"), sym("h"), sym("L")
    # first layer reads n, the L-1 others read h*dirs (= 2h here), two directions each
    expected = 2 * 3 * (h * n + h * h + 2 * h) + 2 * (L - 1) * 3 * (h * 2 * h + h * h + 2 * h)
    assert sympy.expand(GRU(n, h, L, bidirectional=True).params() - expected) == 0


# ---------------------------------------------------------------- against torch

COMBOS = list(itertools.product(["rnn", "lstm", "gru"], [1, 2, 3], [False, True], [True, False]))


@pytest.mark.parametrize(("kind", "layers", "bidir", "bias"), COMBOS)
def test_against_torch(kind: str, layers: int, bidir: bool, bias: bool) -> None:
    torch = pytest.importorskip("torch")
    dsl = (
        f"{kind}(6, 5, num_layers = {layers}, bidirectional = {str(bidir).lower()}, "
        f"bias = {str(bias).lower()})"
    )
    m = one(dsl, "[2, 3, 6]")
    node = next(iter(m.graph.walk()))[0]
    module = node.layer.to_torch(lambda e: int(sympy.sympify(e).xreplace(m.values)))
    assert m.params().total.evaluate() == sum(p.numel() for p in module.parameters())
    with torch.no_grad():
        out = module(torch.zeros(2, 3, 6))
    assert (
        tuple(int(s) for s in node.out_shape) == tuple(out.shape) == (2, 3, 5 * (2 if bidir else 1))
    )


def test_symbolic_layer_count_matches_torch_at_each_value() -> None:
    torch = pytest.importorskip("torch")
    m = symmem.parse(
        "L\n"
        "model m(input = [batch, seq_len, 8]) "
        "{ lstm(8, 4, num_layers = L, bidirectional = true) }\n"
    )
    for L in (1, 2, 5):
        ref = sum(
            p.numel() for p in torch.nn.LSTM(8, 4, num_layers=L, bidirectional=True).parameters()
        )
        assert m.params().total.evaluate(L=L) == ref


def test_unbatched_input_and_dropout_argument() -> None:
    torch = pytest.importorskip("torch")
    m = one("gru(6, 5, num_layers = 2, dropout = 0.2)", "[7, 6]")
    node = next(iter(m.graph.walk()))[0]
    module = node.layer.to_torch(lambda e: int(sympy.sympify(e).xreplace(m.values)))
    out = module(torch.zeros(7, 6))
    assert tuple(int(s) for s in node.out_shape) == tuple(out.shape) == (7, 5)


# ---------------------------------------------------------------- errors


def test_keras_convention_has_no_torch_module() -> None:
    m = one("lstm(16, 32, convention = keras)")
    node = next(iter(m.graph.walk()))[0]
    with pytest.raises(NotImplementedError, match="two bias vectors"):
        node.layer.to_torch(int)


def test_reset_after_is_for_gru_only() -> None:
    with pytest.raises(symmem.SymmemError, match=r"reset_after applies to gru only"):
        one("lstm(16, 32, convention = keras, reset_after = false)")


def test_reset_after_false_needs_keras() -> None:
    with pytest.raises(symmem.SymmemError, match=r"reset_after = false needs convention = keras"):
        one("gru(16, 32, reset_after = false)")


def test_unknown_convention() -> None:
    with pytest.raises(symmem.SymmemError, match=r"convention must be one of pytorch, keras"):
        one("lstm(16, 32, convention = tensorflow)")


def test_input_size_mismatch_names_both_layers() -> None:
    with pytest.raises(symmem.SymmemError) as exc:
        one("linear proj(16, 24)\nlstm rnn(16, 32)")
    msg = str(exc.value)
    assert (
        "'proj'" in msg
        and "'rnn'" in msg
        and "input_size = 16" in msg
        and "[batch, seq_len, 24]" in msg
    )


def test_dropout_range() -> None:
    with pytest.raises(symmem.SymmemError, match=r"dropout must be in \[0, 1\)"):
        one("lstm(16, 32, num_layers = 2, dropout = 1)")


def test_lstm_cudnn_backend_by_hand() -> None:
    """--rnn cudnn (an estimate: no GPU measured it): the tensors PyTorch keeps around the fused
    kernel plus the reserve space counted as 6 S B h per layer and direction.  lstm(8, 16,
    num_layers = 2) on [B 2, S 5, 8], fp32, no dropout, no loss: the first input as the
    kernel's transposed copy (batch > 1) 10 x 8 = 80, the last output 10 x 16 = 160, the
    first layer's output 160, h0 and c0 2 x 2 x 2 x 16 = 128, hy and cy 128, the reserve
    2 x 6 x 5 x 2 x 16 = 1,920: 2,576 elements x 4 B = 10,304 B.  Native cells keep
    9,920 B (measured in tests/test_saved_grid.py's grid); the cuDNN figure is its own."""
    m = symmem.parse("model m(input = [2, 5, 8]) { lstm(8, 16, num_layers = 2) }")
    kw: dict[str, Any] = {"loss": "none", "act_dtype": "fp32"}
    cudnn = m.memory("train", device="cuda", rnn="cudnn", **kw).activations.evaluate()
    assert cudnn == 4 * (80 + 160 + 160 + 128 + 128 + 1920)
    # the tensors around the kernel are oneDNN's (its workspace left out)
    pol = ActPolicy(device="cpu", dtype="fp32", rnn="onednn", loss="none")
    around = [e for e in saved_tensors(m.graph, pol, m.values) if "workspace" not in e.saved.name]
    assert cudnn - 4 * 1920 == entries_bytes(around, pol)


def test_a_kernel_on_a_device_that_does_not_have_it_is_refused() -> None:
    """oneDNN is PyTorch's CPU kernel and cuDNN CUDA's: `--rnn cudnn --device cpu` was
    accepted and counted a reserve space no CPU run keeps."""
    for rnn, device in (("cudnn", "cpu"), ("onednn", "cuda")):
        r = CliRunner().invoke(app, ["memory", "lstm_lm", "--rnn", rnn, "--device", device])
        assert r.exit_code == 1 and f"--rnn {rnn} on --device {device}" in r.output
    ok = CliRunner().invoke(app, ["memory", "lstm_lm", "--rnn", "onednn", "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
