"""The semantic pass: symbols, blocks, repeat, residual/parallel, ties, shapes, and its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import sympy

import symmem
from symmem.errors import SemanticError, ShapeError, SymmemError
from symmem.layers.mlp import MLP
from symmem.quantity import Quantity
from symmem.symbols import sym

d, L, b, s = sym("d"), sym("L"), sym("batch"), sym("seq_len")


def total(text: str, set_values: Mapping[str, Any] | None = None) -> Quantity:
    return symmem.parse(text, set_values=set_values).params().total


def test_repeat_multiplies_and_is_not_unrolled() -> None:
    text = "d = 8\nL = 1000000\nmodel m(input = [batch, d]) { repeat L { linear(d, d) } }\n"
    m = symmem.parse(text)
    nodes = list(m.graph.walk())
    assert len(nodes) == 1  # one node, whatever L is
    node, mult = nodes[0]
    assert mult == L
    # hand derivation: L * (d*d + d)
    assert sympy.expand(m.params().total.expr - L * (d**2 + d)) == 0
    assert m.params().total.evaluate() == 1_000_000 * 72


def test_nested_repeats_multiply() -> None:
    text = (
        "d = 2\n"
        "model m(input = [batch, d]) { repeat 3 { repeat 5 { linear(d, d, bias = false) } } }\n"
    )
    assert total(text).evaluate() == 3 * 5 * 4


def test_repeat_zero_is_allowed_for_optional_modules() -> None:
    text = "k = 0\nmodel m(input = [batch, 4]) { linear(4, 4); repeat k { linear(4, 4) } }\n"
    assert total(text).evaluate() == 20
    assert total(text, set_values={"k": 2}).evaluate() == 60


def test_defaults_may_refer_to_other_symbols_and_free_keeps_them_symbolic() -> None:
    text = "d = 4\nf = 4 * d\nmodel m(input = [batch, d]) { linear(d, f, bias = false) }\n"
    m = symmem.parse(text)
    assert m.params().total.evaluate() == 4 * 16
    free = m.with_values(free=["d"]).params().total.evaluate()
    assert isinstance(free, sympy.Expr)
    assert sympy.expand(free - 4 * d**2) == 0
    assert m.with_values({"d": 10}).params().total.evaluate() == 400


def test_free_symbols_stay_symbolic() -> None:
    m = symmem.parse("width\nmodel m(input = [batch, width]) { linear(width, 3) }\n")
    w = sym("width")
    assert m.params().total.evaluate() == 3 * w + 3


def test_block_arguments_positional_keyword_default_and_locals() -> None:
    text = """
    block proj(i, o = 8, bias = true) {
      h = 2 * i
      linear(i, h, bias = bias)
      linear(h, o, bias = false)
    }
    model m(input = [batch, 4]) { proj(4, bias = false) }
    """
    # hand derivation: 4*8 (no bias) + 8*8 = 96
    assert total(text).evaluate() == 96


def test_block_parameters_shadow_globals_and_pass_words_through() -> None:
    text = """
    d = 100
    block f(d, act) { mlp(d, 2 * d, act = act) }
    model m(input = [batch, 4]) { f(4, act = relu) }
    """
    m = symmem.parse(text)
    assert m.params().total.evaluate() == 4 * 8 * 2 + 8 + 4
    layer = next(iter(m.graph.walk()))[0].layer
    assert isinstance(layer, MLP)
    assert layer.act == "relu"


def test_tied_weight_counts_once_and_bias_still_counts() -> None:
    text = "model m { embedding tok(10, 4); linear(4, 10, tie = tok) }\n"
    # 10*4 embedding, tied weight free, bias 10
    assert total(text).evaluate() == 50


def test_residual_and_parallel_shapes() -> None:
    text = (
        "model m(input = [batch, 4]) "
        "{ residual { linear(4, 4) }; parallel { linear(4, 6) } { linear(4, 6) } }\n"
    )
    m = symmem.parse(text)
    assert m.graph.root.out_shape == (b, 6)


def test_conv_style_shape_propagation_is_symbolic() -> None:
    m = symmem.parse(
        "model m(input = [batch, seq_len, 16]) { linear(16, 32); gelu; linear(32, 8) }\n"
    )
    shapes = [node.out_shape for node, _ in m.graph.walk()]
    assert shapes == [(b, s, 32), (b, s, 32), (b, s, 8)]


def test_layer_paths_are_unique_and_nested() -> None:
    text = (
        "block blk { linear(4, 4); linear(4, 4) }\n"
        "model m(input = [batch, 4]) { repeat 2 layers { blk } }\n"
    )
    paths = [node.path for node, _ in symmem.parse(text).graph.walk()]
    assert paths == ["layers.blk.linear", "layers.blk.linear_1"]


# -------------------------------------------------------------- semantic errors, one each


def _sem(text: str, exc: type[SymmemError] = SemanticError) -> SymmemError:
    with pytest.raises(exc) as info:
        symmem.parse(text, filename="f.mem")
    return info.value


def test_unknown_kind_suggests() -> None:
    e = _sem("model m { lineer(4, 4) }")
    assert (
        "unknown layer kind or block 'lineer'" in e.message and e.hint == "did you mean 'linear'?"
    )


def test_unknown_kind_without_a_near_name_points_to_kinds() -> None:
    assert _sem("model m { zzzqq(4) }").hint == "`symmem kinds` lists the layer kinds"


def test_unknown_keyword_suggests() -> None:
    e = _sem("model m(input = [batch, 4]) { linear(4, 4, biass = true) }")
    assert "no argument 'biass'" in e.message and e.hint == "did you mean 'bias'?"


def test_unknown_symbol() -> None:
    e = _sem("d_model = 4\nmodel m(input = [batch, 4]) { linear(d_modle, 4) }")
    assert "unknown symbol 'd_modle'" in e.message and e.hint == "did you mean 'd_model'?"
    assert e.span is not None and (e.span.line, e.span.column) == (2, 38)


def test_non_integer_head_dim() -> None:
    e = _sem("h = 5\nmodel m(input = [batch, seq_len, 64]) { attention(64, heads = h) }")
    assert "head_dim" in e.message and "not an integer" in e.message and "12.8" in e.message


def test_shape_mismatch_names_both_layers_and_shapes() -> None:
    e = _sem("model m(input = [batch, 8]) { linear a(8, 4); linear b(5, 4) }", ShapeError)
    assert (
        "'a' gives [batch, 4]" in e.message
        and "linear 'b'" in e.message
        and "[..., 5]" in e.message
    )


def test_negative_size() -> None:
    e = _sem("model m(input = [batch, 4]) { linear(4, -3) }")
    assert "out_features must be positive" in e.message


def test_non_integer_size() -> None:
    # integer arithmetic only: 8 / 3 features or 2.5 features are mistakes, not fractional counts
    e = _sem("d = 8\nmodel m(input = [batch, d]) { linear(d, d / 3) }")
    assert "out_features must be a whole number, got d/3 = 2.66667" in e.message
    assert e.span is not None and (e.span.line, e.span.column) == (2, 41)
    assert (
        "must be a whole number" in _sem("model m(input = [batch, 4]) { linear(4, 2.5) }").message
    )
    assert (
        "input dimension must be a whole number"
        in _sem("d = 8\nmodel m(input = [batch, d / 3]) { }").message
    )
    with pytest.raises(SemanticError, match="embedding_dim must be a whole number"):
        symmem.parse("d = 4\nmodel m { embedding(10, d) }", set_values={"d": 7.5})
    assert total("d = 9\nmodel m(input = [batch, d]) { linear(d, d / 3) }").evaluate() == 9 * 3 + 3


def test_values_that_are_not_finite_reals() -> None:
    # found by feeding random programs through symmem.parse:
    # each was a TypeError/ValueError/ZeroDivisionError
    assert (
        "division by zero" in _sem("model m(input = [batch, 4]) { repeat min(0 ^ -1) { } }").message
    )
    e = _sem("h = (-1) ^ 0.5\nmodel m(input = [batch, 4]) { linear(4, h) }")
    assert "is not a real number (a fractional power of a negative number)" in e.message
    assert e.span is not None and (e.span.line, e.span.column) == (1, 5)
    assert (
        "not a real number"
        in _sem("model m(input = [batch, 4]) { repeat min((-1) ^ 0.5, 2) { } }").message
    )
    # found by the derandomized CI fuzz: sympy's Mod(I, 10^400) raised TypeError, Mod(I, 8) claimed
    # to be real
    assert (
        "not a real number"
        in _sem("model m(input = [batch, 4]) { repeat (-1) ^ 0.5 % 10 ^ 400 { } }").message
    )
    assert (
        "not a real number"
        in _sem("d = 8\nmodel m(input = [batch, 4]) { repeat (-1) ^ 0.5 % d { } }").message
    )
    assert (
        "division by zero in"
        in _sem("h = 0\nx\nmodel m(input = [batch, 4]) { linear(4, 4 + x % h) }").message
    )
    assert (
        "(5/2)^16777216 is too large"
        in _sem("model m(input = [batch, 4]) { repeat 2.5 ^ 8 ^ 8 { } }").message
    )
    huge = "model m(input = [batch, 4]) { repeat 10 ^ 400 + 0.5 { linear(4, 4) } }"
    assert "whole number" in _sem(huge).message  # no OverflowError converting 10^400 to float


def test_negative_size_through_a_default() -> None:
    e = _sem("k = 2 - 5\nmodel m(input = [batch, 4]) { linear(4, k) }")
    assert "symbol 'k' must not be negative, got -3" in e.message
    assert e.span is not None and e.span.line == 1


def test_circular_block() -> None:
    e = _sem("block a { b }\nblock b { a }\nmodel m { a }")
    assert "circular block use: a -> b -> a" in e.message


def test_unknown_block_argument() -> None:
    e = _sem("block a(x) { linear(x, x) }\nmodel m(input = [batch, 2]) { a(2, y = 3) }")
    assert "no parameter 'y'" in e.message


def test_missing_block_argument() -> None:
    e = _sem("block a(x) { linear(x, x) }\nmodel m(input = [batch, 2]) { a }")
    assert "needs argument 'x'" in e.message


def test_missing_layer_argument() -> None:
    e = _sem("model m(input = [batch, 2]) { linear(2) }")
    assert "needs argument 'out_features'" in e.message


def test_too_many_positional() -> None:
    e = _sem("model m(input = [batch, 2]) { linear(2, 2, true, tok, 5) }")
    assert "at most 4 positional" in e.message


def test_duplicate_symbol() -> None:
    e = _sem("d = 1\nd = 2\nmodel m { }")
    assert "declared twice" in e.message


def test_residual_shape_change() -> None:
    e = _sem("model m(input = [batch, 4]) { residual { linear(4, 5) } }", ShapeError)
    assert "shapes differ" in e.message


def test_parallel_branches_must_agree() -> None:
    e = _sem(
        "model m(input = [batch, 4]) { parallel { linear(4, 5) } { linear(4, 6) } }", ShapeError
    )
    assert "different shapes" in e.message


def test_repeat_body_must_keep_shape() -> None:
    e = _sem("model m(input = [batch, 4]) { repeat 2 { linear(4, 5) } }", ShapeError)
    assert "cannot be repeated" in e.message


def test_tie_to_unknown_layer() -> None:
    e = _sem("model m(input = [batch, 4]) { linear(4, 4, tie = emb) }")
    assert "no earlier layer is named 'emb'" in e.message


def test_tie_with_different_sizes() -> None:
    e = _sem("model m { embedding e(10, 4); linear(4, 11, tie = e) }")
    assert "same size" in e.message


def test_bad_bool_and_bad_choice() -> None:
    assert (
        "true or false"
        in _sem("model m(input = [batch, 4]) { linear(4, 4, bias = maybe) }").message
    )
    e = _sem("model m(input = [batch, 4]) { mlp(4, 8, act = gleu) }")
    assert "act must be one of" in e.message and e.hint == "did you mean 'gelu'?"


def test_no_model_and_several_models() -> None:
    assert "no model" in _sem("d = 1").message
    assert "several models" in _sem("model a { }\nmodel b { }").message
    assert symmem.parse("model a { }\nmodel b { }", model="b").name == "b"


def test_unknown_function_and_division_by_zero() -> None:
    assert "unknown function 'sqrt'" in _sem("x = sqrt(4)\nmodel m { }").message
    assert "division by zero" in _sem("x = 4 / 0\nmodel m { }").message


def test_cyclic_defaults() -> None:
    assert "refers back to itself" in _sem("a = b\nb = a\nmodel m { }").message


def test_set_unknown_symbol() -> None:
    with pytest.raises(SemanticError, match="unknown symbol 'dmodel'"):
        symmem.parse("d_model = 4\nmodel m { }", set_values={"dmodel": 3})


def test_error_render_has_file_line_column_and_caret() -> None:
    e = _sem("model m(input = [batch, 4]) {\n  linear(4, 4, biass = 1)\n}")
    lines = e.render().splitlines()
    assert lines[0].startswith("f.mem:2:16: error: linear has no argument 'biass'")
    assert lines[1] == "      linear(4, 4, biass = 1)"
    assert lines[2] == "    " + " " * 15 + "^" * len("biass = 1")
