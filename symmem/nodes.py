"""Syntax tree of the DSL: frozen dataclasses that keep their source span.

This module is syntax only: it knows nothing of sympy, layer kinds or shapes.
The semantic pass (:mod:`symmem.graph`) gives the nodes their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from symmem.errors import Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Num:
    #: exact: ``1e23`` is the int 10^23, ``0.1`` the Fraction 1/10
    value: int | Fraction
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / // % ^
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class ShapeLit:
    items: tuple[Expr, ...]
    span: Span


Expr = Num | Name | Str | BinOp | Neg | Call | ShapeLit

# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Arg:
    """A positional (keyword is None) or keyword argument."""

    keyword: str | None
    value: Expr
    span: Span


@dataclass(frozen=True)
class LayerStmt:
    """`kind name?(args)`: a layer of a catalogue kind, or a use of a block."""

    kind: str
    name: str | None
    args: tuple[Arg, ...]
    span: Span
    kind_span: Span


@dataclass(frozen=True)
class RepeatStmt:
    """`repeat n name { ... }`; with `shared` (`repeat n shared { ... }`), one set of weights
    runs n times (ALBERT's cross-layer sharing): parameters once, activations n times."""

    count: Expr
    name: str | None
    body: tuple[Stmt, ...]
    span: Span
    shared: bool = False


@dataclass(frozen=True)
class ResidualStmt:
    name: str | None
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class ParallelStmt:
    """`parallel { a } { b } ...`: every branch reads the same input; outputs are summed.
    An empty branch `{ }` is the identity (so `residual { f }` is `parallel { f } { }`)."""

    name: str | None
    branches: tuple[tuple[Stmt, ...], ...]
    span: Span


@dataclass(frozen=True)
class AssignStmt:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class SymbolDef:
    """`name = default` (default given) or a bare `name` (free symbol)."""

    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class ModelDef:
    name: str
    args: tuple[Arg, ...]
    body: tuple[Stmt, ...]
    span: Span


TopLevel = SymbolDef | BlockDef | ModelDef


@dataclass(frozen=True)
class Program:
    items: tuple[TopLevel, ...]
