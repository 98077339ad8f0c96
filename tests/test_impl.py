"""The implementation option (`--impl`), and conditions decided on values rather than symbols.

Each expected number is derived in the test's docstring; the measured grid is in
tests/test_saved_grid.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sympy
from typer.testing import CliRunner

import symmem
from symmem.activations import ActPolicy, entries_bytes, saved_tensors
from symmem.cli import app
from symmem.errors import OptionError, SemanticError
from symmem.policy import IMPLS
from symmem.values import substitute

runner = CliRunner()


def _activations(*args: str) -> tuple[int, dict[str, object]]:
    res = runner.invoke(app, ["memory", *args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    return int(out["bytes"]["activations"]), out["config"]


def test_dropout_symbol_at_zero_is_no_dropout() -> None:
    """Defect 1: `--set p_drop=0` keeps what `--no-dropout` keeps (bert-base, CPU), and p_drop =
    0.1 keeps more: every mask of the 12 layers and the embedding's."""
    zero, _ = _activations("bert-base", "--device", "cpu", "--set", "p_drop=0")
    off, _ = _activations("bert-base", "--device", "cpu", "--no-dropout")
    on, _ = _activations("bert-base", "--device", "cpu")
    assert zero == off < on


def test_free_dropout_probability_stays_a_piecewise() -> None:
    """A free p keeps Piecewise((1, Ne(p, 0)), (0, True)) around the mask: 4 x 8 elements x 4
    bytes at p = 1/10 (CPU: the noise in fp32), nothing at p = 0."""
    m = symmem.parse("p\nmodel m(input = [4, 8]) { linear(8, 8)\n dropout(p) }", free=["p"])
    pol = ActPolicy(device="cpu", loss="none")
    expr = entries_bytes(saved_tensors(m.graph, pol, m.values), pol)
    assert expr.has(sympy.Piecewise)
    p = m.symbol("p")
    assert expr.xreplace({p: 0}) == 4 * 8 * 4  # the linear's input only
    assert expr.xreplace({p: sympy.Rational(1, 10)}) == 2 * 4 * 8 * 4


def test_impl_defaults_to_the_model_header() -> None:
    """gpt2.mem declares `impl = transformers`; transformer_layer declares nothing: torch."""
    _, cfg = _activations("gpt2", "--device", "cpu")
    assert cfg["impl"] == "transformers"
    _, cfg = _activations(
        "transformer_layer",
        "--device",
        "cpu",
        "--set",
        "d=768",
        "--set",
        "batch=1",
        "--set",
        "seq_len=8",
    )
    assert cfg["impl"] == "torch"
    _, cfg = _activations("gpt2", "--device", "cpu", "--impl", "torch")
    assert cfg["impl"] == "torch"


def test_impl_rules_differ_by_what_they_keep() -> None:
    """GPT-2 (2 layers, d 64, 4 heads), eager, fp32, batch 2, seq 16, no loss: torch keeps a bool
    s x s causal mask per layer (2 x 256 B) and transformers the position ids (8 s = 128 B)."""
    sets = ["--set", "n_layers=2", "--set", "d_model=64", "--set", "n_heads=4"]
    sets += ["--set", "batch=2", "--set", "seq_len=16", "--set", "vocab=100"]
    common = ["gpt2", "--device", "cpu", "--attention", "eager", "--loss", "none", *sets]
    hf, _ = _activations(*common, "--impl", "transformers")
    torch_, _ = _activations(*common, "--impl", "torch")
    assert torch_ - hf == 2 * 16 * 16 - 8 * 16


def test_unknown_impl_is_an_error() -> None:
    res = runner.invoke(app, ["memory", "gpt2", "--impl", "jax"])
    assert res.exit_code == 1 and "unknown impl 'jax'" in res.output
    with pytest.raises(OptionError, match="impl"):
        symmem.load("gpt2").memory("train", impl="jax")
    with pytest.raises(SemanticError, match="impl must be one of"):
        symmem.parse("model m(input = [2, 4], impl = jax) { linear(4, 4) }")


def test_every_impl_names_a_source_for_each_rule() -> None:
    for impl in IMPLS.values():
        assert set(impl.rules) <= set(impl.sources), impl.name
        ActPolicy.for_impl(impl.name)  # the rules are valid policy fields


def test_importer_declares_transformers(tmp_path: Path) -> None:
    res = runner.invoke(app, ["import-hf", "tests/data/hf/llama-3.2-1b.json"])
    assert res.exit_code == 0
    assert "impl = transformers" in res.output
    assert "rotary rotary_emb(hidden_size / num_attention_heads)" in res.output


def test_adaptive_pool_size_symbol_decided_on_its_value() -> None:
    """adaptive_avgpool2d with output size 1 is a mean and keeps nothing, also when the size is a
    symbol whose value is 1: only the linear's input, 2 x 8 x 4 bytes, is kept."""
    m = symmem.parse(
        "o = 1\nmodel m(input = [2, 8, 4, 4]) {\n adaptive_avgpool2d(o)\n flatten\n"
        " linear(8 * o * o, 3) }"
    )
    assert m.memory("train", loss="none").activations.evaluate() == 2 * 8 * 4


def test_repeat_count_symbol_at_zero_keeps_nothing() -> None:
    """repeat n { linear; tanh } between two linears, n = 0: the stream goes from the first
    linear to the last, whose input is a's output: a's input and b's input, 2 x (1 x 4 x 4 B);
    the repeat keeps nothing.  With n = 2: + 2 iterations x (input, tanh output) - the tanh
    output that is b's input, shared: 2 x 16 + 2 x 16 + 16... = 80 B by the walk's rule."""
    src = (
        "n = {}\nmodel m(input = [1, 4]) {{ linear a(4, 4)\n"
        " repeat n r {{ linear(4, 4)\n tanh }}\n linear b(4, 4) }}"
    )
    m0 = symmem.parse(src.format(0))
    assert m0.memory("train", loss="none").activations.evaluate() == 2 * 16
    m2 = symmem.parse(src.format(2))
    literal = symmem.parse(src.format(2).replace("repeat n r", "repeat 2 r"))
    assert (
        m2.memory("train", loss="none").activations.evaluate()
        == literal.memory("train", loss="none").activations.evaluate()
    )


def test_dropout_at_zero_passes_its_input_through() -> None:
    """tanh; dropout(p); linear with p = 0: dropout returns its input itself, so tanh's output and
    the linear's input are one storage: 2 x 4 x 4 B, not twice that."""
    m = symmem.parse("p = 0\nmodel m(input = [2, 4]) { tanh\n dropout(p)\n linear(4, 4) }")
    assert m.memory("train", loss="none", device="cpu").activations.evaluate() == 2 * 4 * 4


def test_mla_head_sizes_in_symbols_decided_on_their_values() -> None:
    """MLA on CPU: q/k heads of nope + rope = 6 + 2 = 8 and a v head of 8 are equal, so sdpa
    takes its fused path (no fp32 math-path copies), whether the sizes are literals or symbols
    whose values are equal (the condition was taken on the symbols, nope + rope - dv != 0, and
    sent them down the math path: 12,992 B instead of 12,736 B).  The fused path here: input
    2 x 8 x 16 = 256, kv_a_proj output 16 x (8 + 2) = 160 (fp32: the norm reads a view of it),
    rstd 16 (fp32), normalized 16 x 8 = 128, kv_b_proj input 128, q and k 16 x 4 x 8 = 512
    each, kv_b_proj output 16 x 4 x (6 + 8) = 896, out 512, log-sum-exp 2 x 4 x 8 = 64:
    3,184 elements x 4 B = 12,736 B.  A free v head size keeps a Piecewise that its value
    decides."""
    args = "16, heads = 4, kv_lora_rank = 8, qk_nope_head_dim = {}, qk_rope_head_dim = {}, "
    args += "v_head_dim = {}"
    lit = symmem.parse(f"model m(input = [2, 8, 16]) {{ mla({args.format(6, 2, 8)}) }}")
    src = "nope = 6\nrope = 2\ndv = 8\nmodel m(input = [2, 8, 16]) {{ mla({}) }}"
    sym = symmem.parse(src.format(args.format("nope", "rope", "dv")))
    kw: dict[str, Any] = {"device": "cpu", "loss": "none", "act_dtype": "fp32"}
    assert lit.memory("train", **kw).activations.evaluate() == 12736
    assert sym.memory("train", **kw).activations.evaluate() == 12736
    free = symmem.parse(src.format(args.format("nope", "rope", "dv")), free=["dv"])
    pol = ActPolicy(device="cpu", loss="none")
    expr = entries_bytes(saved_tensors(free.graph, pol, free.values), pol)
    assert expr.has(sympy.Piecewise)
    dv = free.symbol("dv")
    assert substitute(expr, {**free.values, dv: 8}) == 12736
    # dv = 5 (the layer's own example): the math path of fp32 copies and the softmax
    assert substitute(expr, {**free.values, dv: 5}) == _mla_math_bytes()


def _mla_math_bytes() -> int:
    """The same layer with v head 5 on the math path (fp32, 4 B each): input 256, kv_a_proj
    output 160, rstd 16, normalized 128, kv_b_proj input 128, q and k scaled 16 x 4 x 8 = 512
    each, probabilities 2 x 4 x 8 x 8 = 512, v and o_proj's input 16 x 4 x 5 = 320 each."""
    return 4 * (256 + 160 + 16 + 128 + 128 + 512 + 512 + 512 + 320 + 320)
