"""Syntax tree of the DSL: frozen dataclasses that keep their source span.

This module is syntax only: it knows nothing of sympy, layer kinds or shapes.
The semantic pass (:mod:`symmem.graph`) gives the nodes their meaning.
"""

from __future__ import annotations

from fractions import Fraction

from symmem.errors import Span
from symmem.records import record

# ---------------------------------------------------------------- expressions


@record
class Num:
    #: exact: ``1e23`` is the int 10^23, ``0.1`` the Fraction 1/10
    value: int | Fraction
    span: Span


@record
class Name:
    id: str
    span: Span


@record
class Str:
    value: str
    span: Span


@record
class BinOp:
    op: str  # one of + - * / // % ^
    left: Expr
    right: Expr
    span: Span


@record
class Neg:
    operand: Expr
    span: Span


@record
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span


@record
class ShapeLit:
    items: tuple[Expr, ...]
    span: Span


Expr = Num | Name | Str | BinOp | Neg | Call | ShapeLit

# ---------------------------------------------------------------- statements


@record
class Arg:
    """A positional (keyword is None) or keyword argument."""

    keyword: str | None
    value: Expr
    span: Span


@record
class LayerStmt:
    """`kind name?(args)`: a layer of a catalogue kind, or a use of a block."""

    kind: str
    name: str | None
    args: tuple[Arg, ...]
    span: Span
    kind_span: Span


@record
class RepeatStmt:
    """`repeat n name { ... }`; with `shared` (`repeat n shared { ... }`), one set of weights
    runs n times (ALBERT's cross-layer sharing): parameters once, activations n times."""

    count: Expr
    name: str | None
    body: tuple[Stmt, ...]
    span: Span
    shared: bool = False


@record
class ResidualStmt:
    name: str | None
    body: tuple[Stmt, ...]
    span: Span


@record
class ParallelStmt:
    """`parallel { a } { b } ...`: every branch reads the same input; outputs are summed.
    An empty branch `{ }` is the identity (so `residual { f }` is `parallel { f } { }`)."""

    name: str | None
    branches: tuple[tuple[Stmt, ...], ...]
    span: Span


@record
class AssignStmt:
    name: str
    value: Expr
    span: Span


@record
class PartStmt:
    """`part name(input = [...]) { ... }`: a named tower of a model of several parts (an
    encoder and a decoder; a vision tower and a language model), which reads its own input
    rather than the stream before it."""

    name: str
    args: tuple[Arg, ...]
    body: tuple[Stmt, ...]
    span: Span


Stmt = LayerStmt | RepeatStmt | ResidualStmt | ParallelStmt | AssignStmt | PartStmt

# ---------------------------------------------------------------- top level


@record
class SymbolDef:
    """`name = default` (default given) or a bare `name` (free symbol)."""

    name: str
    default: Expr | None
    span: Span


@record
class Param:
    name: str
    default: Expr | None
    span: Span


@record
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@record
class ModelDef:
    name: str
    args: tuple[Arg, ...]
    body: tuple[Stmt, ...]
    span: Span


TopLevel = SymbolDef | BlockDef | ModelDef


@record
class Program:
    items: tuple[TopLevel, ...]
