"""The parser: text -> syntax tree, with positions; every error is a DSLSyntaxError."""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symmem import nodes as n
from symmem.errors import DSLSyntaxError, SymmemError
from symmem.syntax import parse

GPT_SKETCH = """
d_model = 768; n_layers = 12; n_heads = 12; vocab = 50257; seq_len = 1024; batch
block decoder { layernorm(d_model); attention(d_model, heads = n_heads); layernorm(d_model); mlp(d_model, 4 * d_model, act = gelu) }
model gpt2(input = [batch, seq_len]) { embedding tok(vocab, d_model); embedding pos(seq_len, d_model); repeat n_layers { decoder }; layernorm(d_model); linear(d_model, vocab, bias = false, tie = tok) }
"""  # noqa: E501 - the issue's sketch verbatim: whole blocks on one line, split by ';'


def test_issue_sketch_parses() -> None:
    prog = parse(GPT_SKETCH)
    kinds = [type(i).__name__ for i in prog.items]
    assert kinds == ["SymbolDef"] * 6 + ["BlockDef", "ModelDef"]
    batch = prog.items[5]
    assert isinstance(batch, n.SymbolDef) and batch.name == "batch" and batch.default is None
    model = prog.items[-1]
    assert isinstance(model, n.ModelDef)
    rep = model.body[2]
    assert isinstance(rep, n.RepeatStmt) and rep.count == n.Name("n_layers", rep.count.span)
    head = model.body[-1]
    assert isinstance(head, n.LayerStmt) and head.kind == "linear"
    assert [a.keyword for a in head.args] == [None, None, "bias", "tie"]


def test_positions_are_one_based_and_exact() -> None:
    prog = parse("x = 1\nmodel m {\n  linear l(x, 2)\n}\n")
    model = prog.items[1]
    assert isinstance(model, n.ModelDef)
    layer = model.body[0]
    assert isinstance(layer, n.LayerStmt)
    assert (layer.span.line, layer.span.column) == (3, 3)
    assert (layer.kind_span.line, layer.kind_span.column, layer.kind_span.end_column) == (3, 3, 9)
    assert layer.name == "l"


def test_operator_precedence_and_associativity() -> None:
    prog = parse("x = 1 + 2 * 3 ^ 2 - 8 / 4 / 2\n")
    x_def = prog.items[0]
    assert isinstance(x_def, n.SymbolDef)
    expr = x_def.default
    # ((1 + (2 * (3 ^ 2))) - ((8 / 4) / 2))
    assert isinstance(expr, n.BinOp) and expr.op == "-"
    left, right = expr.left, expr.right
    assert isinstance(left, n.BinOp) and left.op == "+"
    assert isinstance(left.right, n.BinOp) and left.right.op == "*"
    assert isinstance(left.right.right, n.BinOp) and left.right.right.op == "^"
    assert isinstance(right, n.BinOp) and right.op == "/" and isinstance(right.left, n.BinOp)


def test_numbers_functions_strings_unary() -> None:
    prog = parse('a = -ceil(7 / 2) + floor(3.5) + 1_000 + 1e3\nb = "x"\nc = 0.1\n')
    a_def, b_def, c_def = prog.items
    assert isinstance(a_def, n.SymbolDef)
    assert isinstance(b_def, n.SymbolDef)
    assert isinstance(c_def, n.SymbolDef)
    a = a_def.default
    assert isinstance(a, n.BinOp)
    nums = []

    def walk(e: n.Expr) -> None:
        if isinstance(e, n.Num):
            nums.append(e.value)
        for child in (
            getattr(e, "left", None),
            getattr(e, "right", None),
            getattr(e, "operand", None),
        ):
            if child is not None:
                walk(child)
        for child in getattr(e, "args", ()):
            walk(child)

    walk(a)
    assert nums == [7, 2, Fraction(7, 2), 1000, 1000]
    assert b_def.default is not None
    assert b_def.default == n.Str("x", b_def.default.span)
    assert isinstance(c_def.default, n.Num)
    # literals are exact (issue 13): 0.1 is one tenth, not the nearest double
    assert c_def.default.value == Fraction(1, 10)


def test_arguments_may_span_lines_and_blank_lines_and_comments_are_ignored() -> None:
    text = """
    # a comment line

    model m {   # trailing comment
      linear(
        4,      # in
        8,      # out
      )
      ;;
      residual r { gelu }
      parallel { linear(8, 8) } { }
    }
    """
    prog = parse(text.replace(",      # in", ",").replace(",      # out\n      )", ")"))
    model = prog.items[0]
    assert isinstance(model, n.ModelDef)
    body = model.body
    assert [type(s).__name__ for s in body] == ["LayerStmt", "ResidualStmt", "ParallelStmt"]
    par = body[2]
    assert isinstance(par, n.ParallelStmt) and len(par.branches) == 2 and par.branches[1] == ()


def test_block_params_with_defaults_and_local_assignments() -> None:
    prog = parse("block b(d, h = 2) {\n k = d / h\n linear(d, k)\n}\nmodel m { b(4) }\n")
    block = prog.items[0]
    assert isinstance(block, n.BlockDef)
    assert [p.name for p in block.params] == ["d", "h"]
    assert block.params[1].default is not None
    assert isinstance(block.body[0], n.AssignStmt)


# -------------------------------------------------------------- errors, one case each


def _err(text: str) -> DSLSyntaxError:
    with pytest.raises(DSLSyntaxError) as info:
        parse(text, "f.mem")
    return info.value


def test_error_missing_paren() -> None:
    e = _err("model m { linear(1, 2\n}")
    assert e.span is not None and (e.span.line, e.span.column) == (2, 1)
    assert "missing closing ')'" in e.message


def test_error_missing_paren_anywhere_names_the_open_bracket() -> None:
    # the snippet-matched labels only fit the states of their snippets;
    # a bracket scan covers the rest
    e = _err("d = 8\nmodel m(input = [batch, d]) {\n  linear(d, d\n  relu\n}")
    assert (e.span.line, e.span.column) == (4, 3) if e.span else False
    assert "missing closing ')' for the '(' at line 3, column 9" in e.message
    assert (
        "missing closing ']' for the '[' at line 1, column 15"
        in _err("model m(input=[batch, 4) { }").message
    )
    assert (
        "missing closing '}' for the '{' at line 1, column 9"
        in _err("model m {\n  linear(4, 4)\n").message
    )
    assert "')' closes nothing" in _err("# (\nmodel m { linear(4, 4) ) }").message
    e = _err("model m(input = [batch, 4]) { linear(4, 4) linear(4, 4) }")
    assert "two statements on one line" in e.message
    assert "expected an expression" in _err("model m { repeat { linear(4, 4) } }").message


def test_error_missing_expression() -> None:
    e = _err("x = \n")
    assert "expected an expression" in e.message
    assert e.render().startswith("f.mem:1:5: error:")


def test_error_two_statements_on_a_line() -> None:
    e = _err("model m { linear(1, 2) linear(2, 3) }")
    assert e.span is not None and e.span.column == 24
    assert "separate them with a newline" in e.message


def test_error_bad_character_has_caret() -> None:
    e = _err("x = 3 $ 4")
    assert "unexpected character '$'" in e.message
    lines = e.render().splitlines()
    assert lines[1] == "    x = 3 $ 4"
    assert lines[2] == "    " + " " * 6 + "^"


def test_error_unexpected_end_of_file() -> None:
    e = _err("model m {\n  linear(4, 4)\n")
    assert "end of file" in e.message


def test_error_keyword_cannot_be_a_symbol() -> None:
    import symmem
    from symmem.errors import SemanticError

    with pytest.raises(SemanticError, match="'repeat' is a reserved word"):
        symmem.parse("repeat = 3\nmodel m { }\n")


# -------------------------------------------------------------- fuzz

_ALPHABET = st.sampled_from(
    list('abcxyz_0123456789 \n\t;=+-*/^%(){}[],#."')
    + ["model", "block", "repeat", "residual", "parallel", "linear"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_random_text_gives_a_tree_or_our_error(text: str) -> None:
    with contextlib.suppress(SymmemError):
        parse(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_random_text_through_the_whole_front_end(text: str) -> None:
    import symmem

    with contextlib.suppress(SymmemError):
        symmem.parse(text)


# Random *well-formed-looking* programs: the character-level fuzz above rarely gets past the
# parser, so this one builds layer calls with random expressions, keywords, nesting and input
# shapes to reach the semantic pass, and runs them through the CLI (exit 0 or 1, never a traceback).
_ATOM = st.sampled_from(
    [
        "d",
        "h",
        "x",
        "4",
        "8",
        "0",
        "-1",
        "2.5",
        "batch",
        "seq_len",
        "1/0",
        "(-1) ^ 0.5",
        "0 ^ -1",
        "x % h",
        "10 ^ 400",
    ]
)
_EXPR = st.recursive(
    _ATOM,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "^"]), inner).map(
            " ".join
        ),
        st.tuples(st.sampled_from(["ceil", "floor", "min", "max"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
    ),
    max_leaves=5,
)
_KIND = st.sampled_from(
    [
        "linear",
        "conv2d",
        "maxpool2d",
        "flatten",
        "embedding",
        "layernorm",
        "batchnorm2d",
        "lstm",
        "gru",
        "attention",
        "mla",
        "mlp",
        "gated_mlp",
        "moe",
        "relu",
        "dropout",
        "blk",
    ]
)
_KW = st.sampled_from(
    [
        "bias",
        "heads",
        "kv_heads",
        "head_dim",
        "act",
        "tie",
        "stride",
        "padding",
        "groups",
        "num_layers",
        "convention",
        "top_k",
        "p",
        "affine",
        "kernel_size",
        "biass",
    ]
)
_ARG = st.one_of(
    _EXPR,
    st.tuples(_KW, st.one_of(_EXPR, st.sampled_from(["true", "false", "gelu", "keras", "a"]))).map(
        lambda t: f"{t[0]} = {t[1]}"
    ),
)
_LAYER = st.tuples(_KIND, st.sampled_from(["", " a"]), st.lists(_ARG, max_size=4)).map(
    lambda t: f"{t[0]}{t[1]}({', '.join(t[2])})"
)
_BODY = st.recursive(
    st.lists(_LAYER, max_size=3).map("; ".join),
    lambda inner: st.one_of(
        st.tuples(_EXPR, inner).map(lambda t: f"repeat {t[0]} {{ {t[1]} }}"),
        inner.map(lambda b: f"residual {{ {b} }}"),
        st.tuples(inner, inner).map(lambda t: f"parallel {{ {t[0]} }} {{ {t[1]} }}"),
        st.tuples(inner, inner).map("; ".join),
    ),
    max_leaves=4,
)
_SHAPE = st.sampled_from(
    ["[batch, seq_len]", "[batch, d]", "[batch, seq_len, d]", "[batch, 3, 8, 8]", "[batch]"]
)
_PROGRAM = st.tuples(
    st.sampled_from(["8", "0", "-2", "d"]), st.sampled_from(["2", "3", "0"]), _BODY, _SHAPE, _BODY
).map(
    lambda t: (
        f"d = {t[0]}\nh = {t[1]}\nx\nblock blk(p = d) {{ {t[2]} }}\n"
        f"model m(input = {t[3]}) {{ {t[4]} }}\n"
    )
)


@settings(max_examples=300, deadline=None)
@given(_PROGRAM)
def test_random_programs_through_the_cli(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    from typer.testing import CliRunner

    from symmem.cli import app

    path = tmp_path_factory.mktemp("fuzz") / "f.mem"
    path.write_text(text)
    r = CliRunner().invoke(app, ["params", str(path), "--json"])
    assert r.exit_code in (0, 1), (text, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), (text, r.exception)
    assert "Traceback" not in r.output


# ---------------------------------------------------------------- the pre-generated parser
# symmem/_lark_parser.py holds LALR tables generated from grammar/symmem.lark (see
# symmem.syntax). These tests prove that it belongs to the grammar on disk and parses
# exactly as a parser built from that grammar now does, and that a stale one is never used.

REGENERATE = "symmem/_lark_parser.py is stale: run `python grammar/regenerate.py`"


def _fresh_lark() -> Any:
    from lark import Lark

    from symmem.resources import grammar_text
    from symmem.syntax import LARK_OPTIONS, _NewlinePostLex

    return Lark(grammar_text(), postlex=_NewlinePostLex(), **LARK_OPTIONS)


def _shape(tree: Any) -> Any:
    """A tree as plain tuples (rule, children; token type, text, position), whichever lark
    runtime built it."""
    if hasattr(tree, "data"):
        meta = tree.meta
        pos = (
            None
            if getattr(meta, "empty", True)
            else (meta.line, meta.column, meta.end_line, meta.end_column)
        )
        return (str(tree.data), pos, tuple(_shape(c) for c in tree.children))
    return (tree.type, str(tree), tree.line, tree.column, tree.end_line, tree.end_column)


def _outcome(parser: Any, text: str) -> Any:
    try:
        return _shape(parser.parse(text))
    except Exception as exc:  # noqa: BLE001 - compare both runtimes' errors by name and place
        expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
        return (
            type(exc).__name__,
            getattr(exc, "line", None),
            getattr(exc, "column", None),
            expected,
        )


def test_generated_parser_is_keyed_to_this_grammar() -> None:
    import symmem._lark_parser as generated
    from symmem import syntax
    from symmem.resources import grammar_text

    assert syntax.grammar_key(grammar_text()) == generated.GRAMMAR_KEY, REGENERATE
    assert syntax._rt is generated  # the run-time parser is the generated one, not a rebuild


def test_generated_parser_parses_like_the_grammar(examples_dir: Any) -> None:
    from symmem.syntax import _parser

    fresh, generated = _fresh_lark(), _parser()
    texts = [p.read_text(encoding="utf-8") for p in sorted(examples_dir.glob("*.mem"))]
    texts += [GPT_SKETCH, "x = (1 + 2\n", "model m { linear(1, 2) linear(2, 3) }\n", "x = 1 +\n"]
    texts += ["model m { linear(1, ) }\n", "x = $\n", "block b {\n", "", "\n\n;;\n"]
    assert len(texts) > 10
    for text in texts:
        assert _outcome(generated, text) == _outcome(fresh, text), (REGENERATE, text)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            list(' \n;=+-*/^%(){}[],#."')
            + ["model", "block", "repeat", "residual", "parallel", "linear", "x", "2", "1.5e3"]
        ),
        max_size=30,
    ).map(" ".join)
)
def test_generated_parser_agrees_on_token_soup(text: str) -> None:
    from symmem.syntax import _parser

    assert _outcome(_parser(), text + "\n") == _outcome(_fresh_lark(), text + "\n")


def test_stale_generated_parser_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited grammar (here: `**` dropped as a power operator) that nobody regenerated
    is compiled in memory; the generated tables, built from the old grammar, are ignored."""
    from symmem import syntax
    from symmem.resources import grammar_text

    edited = grammar_text().replace('("^" | "**")', '"^"')
    assert edited != grammar_text()
    monkeypatch.setattr(syntax, "grammar_text", lambda: edited)
    runtime = syntax._runtime()
    assert syntax.grammar_key(edited) == runtime.GRAMMAR_KEY
    assert runtime.__name__ != syntax.GENERATED_MODULE
    rebuilt = runtime.Lark_StandAlone(postlex=syntax._NewlinePostLex())
    assert rebuilt.parse("x = 2 ^ 3\n")
    with pytest.raises(runtime.UnexpectedInput):
        rebuilt.parse("x = 2 ** 3\n")
    assert syntax._parser().parse("x = 2 ** 3\n")  # the real grammar still has it
