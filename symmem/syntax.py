"""Text -> :class:`symmem.nodes.Program`.  Syntax only (no sympy, no layer catalogue).

The grammar lives in ``grammar/symmem.lark`` (shipped inside the wheel as
``symmem.grammar``).  Parsing is LALR with positions; the tree is transformed
into frozen dataclasses *after* parsing, so positions survive and semantic
errors are raised by a later pass rather than wrapped in lark's ``VisitError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from symmem import nodes as n
from symmem.errors import DSLSyntaxError, Span


class _NewlinePostLex:
    """Drop newlines inside () and [] and collapse runs of separators.

    This lets argument lists span lines while a newline (or ';') ends a
    statement everywhere else.
    """

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        last_nl = False
        for tok in stream:
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            if tok.type == "_NL":
                if depth or last_nl:
                    continue
                last_nl = True
            else:
                last_nl = False
            yield tok


@lru_cache(maxsize=1)
def _parser() -> Lark:
    try:
        text = resources.files("symmem.grammar").joinpath("symmem.lark").read_text(encoding="utf-8")
    except ModuleNotFoundError:  # a source checkout imported directly, without an (editable) install
        from pathlib import Path

        text = (Path(__file__).resolve().parent.parent / "grammar" / "symmem.lark").read_text(encoding="utf-8")
    return Lark(
        text,
        parser="lalr",
        lexer="contextual",
        postlex=_NewlinePostLex(),
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _span(meta: Any) -> Span:
    if getattr(meta, "empty", False) or not hasattr(meta, "line"):
        return Span(1, 1)
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tspan(tok: Token) -> Span:
    return Span(tok.line or 1, tok.column or 1, tok.end_line, tok.end_column)


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    if "." in clean or "e" in clean or "E" in clean:
        value = float(clean)
        return int(value) if value.is_integer() and "." not in clean else value
    return int(clean)


@v_args(meta=True)
class _ToNodes(Transformer[Token, n.Program]):
    # ---- expressions
    def number(self, meta: Any, c: list[Token]) -> n.Num:
        return n.Num(_number(str(c[0])), _span(meta))

    def name(self, meta: Any, c: list[Token]) -> n.Name:
        return n.Name(str(c[0]), _span(meta))

    def string(self, meta: Any, c: list[Token]) -> n.Str:
        return n.Str(str(c[0])[1:-1], _span(meta))

    def _bin(op: str) -> Any:  # type: ignore[misc]
        def method(self: Any, meta: Any, c: list[Any]) -> n.BinOp:
            return n.BinOp(op, c[0], c[1], _span(meta))

        return method

    add = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    div = _bin("/")
    floordiv = _bin("//")
    mod = _bin("%")
    pow = _bin("^")

    def neg(self, meta: Any, c: list[Any]) -> n.Neg:
        return n.Neg(c[0], _span(meta))

    def call(self, meta: Any, c: list[Any]) -> n.Call:
        return n.Call(str(c[0]), tuple(c[1:]), _span(meta))

    def shape(self, meta: Any, c: list[Any]) -> n.ShapeLit:
        return n.ShapeLit(tuple(c), _span(meta))

    # ---- arguments
    def posarg(self, meta: Any, c: list[Any]) -> n.Arg:
        return n.Arg(None, c[0], _span(meta))

    def kwarg(self, meta: Any, c: list[Any]) -> n.Arg:
        return n.Arg(str(c[0]), c[1], _span(meta))

    def arglist(self, meta: Any, c: list[Any]) -> tuple[n.Arg, ...]:
        return tuple(c)

    # ---- statements
    def layer(self, meta: Any, c: list[Any]) -> n.LayerStmt:
        kind_tok: Token = c[0]
        name = str(c[1]) if len(c) > 1 and isinstance(c[1], Token) else None
        args = c[-1] if c and isinstance(c[-1], tuple) else ()
        return n.LayerStmt(str(kind_tok), name, args, _span(meta), _tspan(kind_tok))

    def body(self, meta: Any, c: list[Any]) -> tuple[n.Stmt, ...]:
        return tuple(c)

    def repeat(self, meta: Any, c: list[Any]) -> n.RepeatStmt:
        name = str(c[1]) if len(c) == 3 else None
        return n.RepeatStmt(c[0], name, c[-1], _span(meta))

    def residual(self, meta: Any, c: list[Any]) -> n.ResidualStmt:
        name = str(c[0]) if len(c) == 2 else None
        return n.ResidualStmt(name, c[-1], _span(meta))

    def parallel(self, meta: Any, c: list[Any]) -> n.ParallelStmt:
        name = str(c[0]) if c and isinstance(c[0], Token) else None
        branches = tuple(b for b in c if isinstance(b, tuple))
        return n.ParallelStmt(name, branches, _span(meta))

    def assign(self, meta: Any, c: list[Any]) -> n.AssignStmt:
        return n.AssignStmt(str(c[0]), c[1], _span(meta))

    # ---- top level
    def symdef(self, meta: Any, c: list[Any]) -> n.SymbolDef:
        return n.SymbolDef(str(c[0]), c[1], _span(meta))

    def freedef(self, meta: Any, c: list[Token]) -> list[n.SymbolDef]:
        return [n.SymbolDef(str(t), None, _tspan(t)) for t in c]

    def param(self, meta: Any, c: list[Any]) -> n.Param:
        return n.Param(str(c[0]), c[1] if len(c) > 1 else None, _span(meta))

    def params(self, meta: Any, c: list[Any]) -> tuple[n.Param, ...]:
        return tuple(c)

    def blockdef(self, meta: Any, c: list[Any]) -> n.BlockDef:
        params = c[1] if len(c) == 3 else ()
        return n.BlockDef(str(c[0]), params, c[-1], _span(meta))

    def modeldef(self, meta: Any, c: list[Any]) -> n.ModelDef:
        args = c[1] if len(c) == 3 else ()
        return n.ModelDef(str(c[0]), args, c[-1], _span(meta))

    def start(self, meta: Any, c: list[Any]) -> n.Program:
        items: list[n.TopLevel] = []
        for item in c:
            if isinstance(item, list):
                items.extend(item)
            else:
                items.append(item)
        return n.Program(tuple(items))


# Example snippets that teach `match_examples` which message fits which state.
_EXAMPLES: dict[str, list[str]] = {
    "missing closing ')'": ["model m { linear(1, 2\n}", "x = (1 + 2\n"],
    "missing closing '}'": ["model m { linear(1, 2)\n", "block b { linear(1, 2)\n"],
    "expected an expression": ["x = \n", "x = 1 +\n", "model m { linear(1, ) }", "x = 1 * * 2\n"],
    "two statements on one line: separate them with a newline or ';'": [
        "model m { linear(1, 2) linear(2, 3) }",
        "x = 1 y = 2\n",
    ],
    "a keyword argument needs a value: name = expression": ["model m { linear(1, bias = ) }"],
}


def _describe(tok: Token | None) -> str:
    if tok is None or tok.type == "$END":
        return "end of file"
    if tok.type == "_NL":
        return "end of line"
    return f"'{tok}'"


def parse(text: str, filename: str | None = None) -> n.Program:
    """Parse DSL text into a :class:`~symmem.nodes.Program`.

    Raises :class:`~symmem.errors.DSLSyntaxError` with the position of the
    first offending token.
    """
    source = text if text.endswith("\n") else text + "\n"
    parser = _parser()
    try:
        tree: Tree[Token] = parser.parse(source)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, parser, source, filename) from None
    except LarkError as exc:  # pragma: no cover - defensive: lark internals
        raise DSLSyntaxError(f"cannot parse: {exc}", filename=filename, source=source) from None
    return _ToNodes().transform(tree)


def _syntax_error(exc: UnexpectedInput, parser: Lark, source: str, filename: str | None) -> DSLSyntaxError:
    label = None
    try:
        label = exc.match_examples(parser.parse, _EXAMPLES, use_accepts=True)
    except Exception:  # noqa: BLE001 - match_examples re-parses arbitrary snippets
        label = None
    line = getattr(exc, "line", None) or 1
    column = getattr(exc, "column", None) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        ch = source[pos] if pos < len(source) else ""
        msg = f"unexpected character '{ch}'"
    elif isinstance(exc, UnexpectedEOF):
        msg = "unexpected end of file"
        lines = source.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    elif isinstance(exc, UnexpectedToken):
        msg = f"unexpected {_describe(exc.token)}"
        if exc.token.type == "$END":
            lines = source.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
    else:  # pragma: no cover
        msg = "syntax error"
    if not label and isinstance(exc, UnexpectedToken):
        label = _fallback_label(exc, source)
    if label:
        msg = f"{msg}: {label}"
    return DSLSyntaxError(msg, Span(line, column), source=source, filename=filename)


_CLOSE = {")": "(", "]": "[", "}": "{"}
_FRIENDLY = {"RPAR": "')'", "COMMA": "','", "RBRACE": "'}'", "LBRACE": "'{'", "RSQB": "']'", "EQUAL": "'='",
             "NAME": "a name", "_NL": "a newline or ';'"}
_EXPR_START = {"NUMBER", "NAME", "LPAR", "MINUS"}


def _fallback_label(exc: UnexpectedToken, source: str) -> str | None:
    """A hint where no ``_EXAMPLES`` snippet matched: an unclosed or unmatched bracket
    (found by scanning the text before the error), else the tokens the parser expected."""
    end = exc.token.start_pos if exc.token.start_pos is not None else len(source)
    stack: list[tuple[str, int, int]] = []
    line, col, i = 1, 1, 0
    while i < end:
        ch = source[i]
        if ch == "#":  # comment: skip to the end of the line
            while i < end and source[i] != "\n":
                i += 1
            continue
        if ch == '"':
            j = source.find('"', i + 1, end)
            if j > 0:
                col += j - i
                i = j
        elif ch in "([{":
            stack.append((ch, line, col))
        elif ch in _CLOSE and stack and stack[-1][0] == _CLOSE[ch]:
            stack.pop()
        if ch == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    tok = str(exc.token)
    if exc.token.type == "$END" and stack:
        opener, at_line, at_col = stack[-1]
        closer = {"(": ")", "[": "]", "{": "}"}[opener]
        return f"missing closing '{closer}' for the '{opener}' at line {at_line}, column {at_col}"
    if tok in _CLOSE and (not stack or stack[-1][0] != _CLOSE[tok]):
        if stack and stack[-1][0] in "([":
            closer = ")" if stack[-1][0] == "(" else "]"
            return f"missing closing '{closer}' for the '{stack[-1][0]}' at line {stack[-1][1]}, column {stack[-1][2]}"
        return f"'{tok}' closes nothing"
    if stack and stack[-1][0] in "([" and stack[-1][1] < (exc.line or 0):
        closer = ")" if stack[-1][0] == "(" else "]"
        return f"missing closing '{closer}' for the '{stack[-1][0]}' at line {stack[-1][1]}, column {stack[-1][2]}"
    expected = {e for e in (exc.expected or ()) if not e.startswith("__")}
    if expected == {"LBRACE", "RBRACE", "_NL"} or expected == {"RBRACE", "_NL"}:
        return "two statements on one line: separate them with a newline or ';'"
    if expected >= _EXPR_START:
        return "expected an expression"
    names = [_FRIENDLY[e] for e in sorted(expected) if e in _FRIENDLY]
    if names and len(names) == len(expected):
        return "expected " + " or ".join(names)
    return None
