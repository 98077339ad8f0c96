"""Semantic pass: :class:`symmem.nodes.Program` -> :class:`LayerGraph`.

Names become sympy symbols, layer statements become instances of catalogue
kinds (typed by their dataclass annotations), blocks are expanded with their
arguments, ``repeat`` bodies are built *once* and carry a multiplicity, and
shapes are propagated from the model's input and checked at every layer.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from fractions import Fraction
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import sympy

from symmem import constraints as cons
from symmem import nodes as n
from symmem.constraints import Constraint
from symmem.errors import SemanticError, ShapeError, Span, SymmemError, suggest
from symmem.layers import catalogue
from symmem.layers import index as layer_index
from symmem.layers.base import Layer, Shape, fmt_shape, same
from symmem.limits import (
    MAX_DIGITS,
    MAX_NESTING,
    LimitError,
    check_int,
    exponent_too_large,
    power_too_large,
)
from symmem.policy import IMPLS
from symmem.quant import QUANTS
from symmem.records import record
from symmem.symbols import IMPLICIT_FREE, sym
from symmem.values import as_mapping, as_names, as_value, substitute

# ---------------------------------------------------------------- graph nodes


@record
class LayerNode:
    """One layer of a catalogue kind, at one place in the model."""

    path: str
    layer: Layer
    in_shape: Shape
    out_shape: Shape
    span: Span
    #: path of the layer whose weight this one shares (``tie = ...``)
    tie: str | None = None


@record
class GroupNode:
    """A sequence of nodes: the model, a block use, a ``repeat``, a ``residual``,
    or a ``parallel`` whose body is its ``branch`` groups.

    ``count`` is the repeat count (1 for others; 0 is allowed, for optional
    modules such as DeepSeek's MTP layer); a ``shared`` repeat (``repeat n shared { }``,
    ALBERT's cross-layer sharing) runs one set of weights ``count`` times, so its count
    multiplies activations and caches but not parameters.  A residual group adds its input to
    its output; a parallel group sums its branches' outputs, each branch
    reading the group's input (an empty branch is the identity).
    """

    path: str
    kind: str  # "model" | "part" | "block" | "repeat" | "residual" | "parallel" | "branch"
    name: str
    body: tuple[Node, ...]
    in_shape: Shape
    out_shape: Shape
    span: Span
    count: sympy.Expr = sympy.Integer(1)
    shared: bool = False

    @property
    def weight_count(self) -> sympy.Expr:
        """How many sets of weights the group holds per enclosing instance: its count, or 1
        for a shared repeat."""
        return sympy.Integer(1) if self.shared else self.count

    def first_layer(self) -> LayerNode | None:
        """The first layer of the body, depth first (the one that reads the group's input)."""
        for child in self.body:
            if isinstance(child, LayerNode):
                return child
            found = child.first_layer()
            if found is not None:
                return found
        return None


Node = LayerNode | GroupNode

#: Model-header options (besides ``input``) and their allowed values.
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    # Whether MoE "active parameters per token" count the input-embedding table
    # (Mixtral's published 12.9B does; DeepSeek-V3's published 37B does not).
    "active_embeddings": ("count", "exclude"),
    # The dtype the model's checkpoint is published in (config.json torch_dtype): the default
    # precision of the memory model (docs/memory.md, "Defaults from the model").
    "dtype": ("fp32", "fp16", "bf16"),
    # The weight quantization of the published checkpoint (config.json quantization_config):
    # a format of symmem.quant, applied by default at inference.
    "quantization": tuple(QUANTS),
    # nf4 with its block scales quantized again (bnb_4bit_use_double_quant)
    "double_quant": ("true", "false"),
    # The implementation the model is built with, whose saved tensors the memory model
    # counts by default (symmem.policy.IMPLS; `--impl` overrides it).
    "impl": tuple(IMPLS),
}
#: Model-header options whose value is a whole number >= 1: the quantization's group size,
#: and the positions the model was trained for (max_position_embeddings), beyond which a
#: seq_len gets a warning.
#: ``mtp``: the multi-token-prediction modules the model trains with (DeepSeek-V3's
#: num_nextn_predict_layers), counted by the repeat over the symbol :data:`MTP_SYMBOL`; the
#: memory option ``mtp`` decides whether a step counts them (docs/memory.md).
MODEL_NUMBERS: tuple[str, ...] = ("group_size", "max_positions", "mtp")
#: the symbol that counts a model's multi-token-prediction modules (its header's ``mtp = N``)
MTP_SYMBOL = "mtp_layers"


@record
class LayerGraph:
    """The checked, symbolic description of one model."""

    name: str
    #: every declared symbol by name (implicit batch / seq_len included)
    symbols: dict[str, sympy.Symbol]
    #: default value expression of each symbol that has one
    defaults: dict[sympy.Symbol, sympy.Expr]
    input_shape: Shape
    root: GroupNode
    options: dict[str, str] = field(default_factory=dict)
    #: what the model requires of its values (whole sizes, divisibility, positivity), each
    #: checked at build time and kept for solve, sweep and :func:`check_values`
    constraints: tuple[Constraint, ...] = ()
    #: the model's named parts (``part encoder(...) { }``), in order; empty for a model of one
    #: stream.  The last part is the one that generates (a decoder, a language model).
    parts: tuple[str, ...] = ()
    #: the part that generates token by token (the last part, when it attends causally: a
    #: decoder, a language model); None for one-part models and dual encoders (CLIP, SigLIP)
    generating: str | None = None

    def part_of(self, path: str) -> str | None:
        """The part a layer path belongs to (None outside every part)."""
        return next((p for p in self.parts if path == p or path.startswith(p + ".")), None)

    def only(self, part: str) -> LayerGraph:
        """The graph of one part alone (``--part text``): its layers, input and output; a
        layer tied to another part's weight keeps the tie (its weight counted there)."""
        found = next(
            (
                n
                for n in self.root.body
                if isinstance(n, GroupNode) and n.kind == "part" and n.name == part
            ),
            None,
        )
        if found is None:
            hint = suggest(part, list(self.parts))
            known = ", ".join(self.parts) or "none: a model of one stream"
            raise SemanticError(
                f"part = {part}: the model has no such part (parts: {known})", hint=hint
            )
        root = GroupNode(
            "", "model", self.root.name, found.body, found.in_shape, found.out_shape, found.span
        )
        return replace(
            self,
            input_shape=found.in_shape,
            root=root,
            parts=(),
            generating=None,
        )

    def input_groups(self) -> list[GroupNode]:
        """The groups that read an input of the model: its parts in order (each reads its
        own), or the model itself for a model of one stream."""
        parts = [n for n in self.root.body if isinstance(n, GroupNode) and n.kind == "part"]
        return parts or [self.root]

    def keeps_cache(self, path: str) -> bool:
        """Whether a layer keeps its KV cache at generation: every layer of a one-stream
        model; in a model of parts, those of the generating part only (not the parts that run
        once on their input before generation starts, an encoder or a vision tower; none in a
        dual encoder)."""
        part = self.part_of(path)
        return part is None or part == self.generating

    def walk(self) -> Iterator[tuple[LayerNode, sympy.Expr]]:
        """Every layer node with its multiplicity (product of enclosing repeat counts): how many
        times it runs, each run with its own activations and caches."""
        yield from _walk(self.root, sympy.Integer(1))

    def walk_weights(self) -> Iterator[tuple[LayerNode, sympy.Expr]]:
        """Every layer node with how many sets of weights it has: the product of enclosing
        repeat counts, a ``shared`` repeat counting once (equal to :meth:`walk` without one)."""
        yield from _walk(self.root, sympy.Integer(1), weights=True)

    def layer(self, path: str) -> LayerNode:
        for node, _ in self.walk():
            if node.path == path:
                return node
        raise KeyError(path)


def _walk(
    group: GroupNode, mult: sympy.Expr, weights: bool = False
) -> Iterator[tuple[LayerNode, sympy.Expr]]:
    inner = mult * (group.weight_count if weights else group.count)
    for child in group.body:
        if isinstance(child, LayerNode):
            yield child, inner
        else:
            yield from _walk(child, inner, weights)


# ---------------------------------------------------------------- values


def resolve_values(
    defaults: Mapping[sympy.Symbol, sympy.Expr],
    symbols: Mapping[str, sympy.Symbol],
    set_values: Mapping[str, Any] | None = None,
    free: typing.Iterable[str] = (),
    spans: Mapping[str, Span] | None = None,
) -> dict[sympy.Symbol, sympy.Expr]:
    """The substitution that gives each non-free symbol its value.

    Defaults may refer to other symbols (``d_ff = 4 * d_model``); they are
    resolved to a fixpoint, so ``--free d_model`` leaves ``d_ff`` as
    ``4*d_model``.  ``set_values`` override defaults.
    """
    raw: dict[sympy.Symbol, sympy.Expr] = dict(defaults)
    for name, value in as_mapping(set_values, "set_values").items():
        if name not in symbols:
            hint = suggest(name, list(symbols))
            raise SemanticError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
        raw[symbols[name]] = as_value(value, f"the value of '{name}'")
    for name in as_names(free, "free"):
        if name not in symbols:
            hint = suggest(name, list(symbols))
            raise SemanticError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
        raw.pop(symbols[name], None)
    # each value once, in dependency order (a chain of n defaults costs n substitutions)
    resolved: dict[sympy.Symbol, sympy.Expr] = {}
    visiting: set[sympy.Symbol] = set()
    for start in raw:
        if start in resolved:
            continue
        stack: list[sympy.Symbol] = [start]
        while stack:
            s = stack[-1]
            if s in resolved:
                stack.pop()
                continue
            visiting.add(s)
            pending = [d for d in raw[s].free_symbols if d in raw and d not in resolved]
            if pending:
                for d in pending:
                    if d in visiting:
                        raise SemanticError(
                            f"the default of '{d}' refers back to itself through other defaults",
                            spans.get(str(d)) if spans else None,
                        )
                stack.extend(pending)
                continue
            deps = {d: resolved[d] for d in raw[s].free_symbols if d in resolved}
            resolved[s] = substitute(raw[s], deps) if deps else raw[s]
            visiting.discard(s)
            stack.pop()
    return resolved


def position_limits(
    graph: LayerGraph, values: Mapping[sympy.Symbol, sympy.Expr]
) -> list[tuple[int, str]]:
    """The positions the model has, at ``values``, each with what sets it: the
    ``max_positions`` its header declares (config.json max_position_embeddings), and each
    learned position table (:meth:`Layer.positions`) of a layer that reads the ``seq_len``
    stream."""
    ev = evaluator(values)
    limits: list[tuple[int, str]] = []
    declared = graph.options.get("max_positions")
    if declared is not None:
        limits.append((int(declared), "the model's max_positions (max_position_embeddings)"))
    seq = graph.symbols.get("seq_len")
    for node, _ in graph.walk():
        table = node.layer.positions()
        # a table over another stream (a vision tower's patches) does not bound seq_len
        if table is None or not any(seq in sympy.sympify(d).free_symbols for d in node.in_shape):
            continue
        n = ev(table)
        if isinstance(n, int):
            limits.append((n, f"the learned position table {node.path} ({table})"))
    return limits


def positions_warning(graph: LayerGraph, values: Mapping[sympy.Symbol, sympy.Expr]) -> str | None:
    """A warning when ``seq_len`` (at ``values``) is beyond the positions the model has
    (:func:`position_limits`)."""
    s = graph.symbols.get("seq_len")
    seq = evaluator(values)(s) if s is not None else None
    if not isinstance(seq, int):
        return None
    for limit, what in position_limits(graph, values):
        if seq > limit:
            return f"seq_len = {seq:,} is beyond {what}: {limit:,} positions"
    return None


def check_values(
    constraints: typing.Sequence[Constraint], values: Mapping[sympy.Symbol, sympy.Expr]
) -> None:
    """SemanticError (at the statement that asked for it) for the first constraint the
    values break; constraints over symbols without a value are not decided."""
    ev = evaluator(values)
    for c in constraints:
        message = c.violation(ev, ev.exact)  # type: ignore[attr-defined]
        if message is not None:
            raise SemanticError(message, c.span)


def exact_evaluator(
    values: Mapping[sympy.Symbol, sympy.Expr],
) -> typing.Callable[[sympy.Expr], int | Fraction | None]:
    """ev(expr): its exact rational value at ``values``, or None (symbols remain, or the value
    is not a rational number).  Division by zero is a SemanticError."""

    values = dict(values)  # once: a copy per call would make n checks cost n^2

    def exact(expr: sympy.Expr) -> int | Fraction | None:
        try:
            out = substitute(expr, values)
        except ZeroDivisionError:
            raise SemanticError(f"division by zero in {expr} at the given values") from None
        if isinstance(out, int | Fraction):
            return out
        if out.has(sympy.zoo, sympy.nan):
            raise SemanticError(f"division by zero in {expr} at the given values")
        if out.is_Integer:
            return int(out)
        if out.is_Rational:
            return Fraction(int(out.p), int(out.q))
        return None

    return exact


def evaluator(
    values: Mapping[sympy.Symbol, sympy.Expr],
) -> typing.Callable[[sympy.Expr], int | float | None]:
    """ev(expr): its number at ``values``, or None when symbols remain.

    ``ev.exact`` evaluates without floats (:func:`exact_evaluator`)."""

    values = dict(values)

    def ev(expr: sympy.Expr) -> int | float | None:
        try:
            out = substitute(sympy.sympify(expr), values)
        except ZeroDivisionError:  # x % h with h = 0 only shows once h has its value
            raise SemanticError(f"division by zero in {expr} at the given values") from None
        if out.free_symbols:
            return None
        out = sympy.nsimplify(out) if out.is_Float else out
        if out.is_Integer:
            return int(out)
        if out.is_Rational:
            return float(out)
        if out.is_number:
            # numerically, not by sympy's assumptions: it calls Mod(I, 8) "extended real"
            try:
                value = complex(out.evalf())
            except (TypeError, ValueError, OverflowError):
                value = complex("nan")
            if value.imag == 0 and math.isfinite(value.real):
                return value.real
        if out.is_number:  # (-1)**(1/2), 0**-1: not a size
            raise SemanticError(
                (
                    f"{expr} is {out} at the given values"
                    if sympy.sympify(expr) != out
                    else f"the value {out} is"
                )
                + " not a finite real number"
                " (a division by zero, or a fractional power of a negative number)"
            )
        return None  # pragma: no cover

    ev.exact = exact_evaluator(values)  # type: ignore[attr-defined]
    return ev


# ---------------------------------------------------------------- environment


@record
class _Thunk:
    """A not-yet-typed value: an AST expression and the scope to read it in."""

    expr: n.Expr
    env: _Env


@dataclass
class _Env:
    symbols: dict[str, sympy.Symbol]
    local: dict[str, _Thunk] = field(default_factory=dict)
    #: output shapes of the parts built so far (shared by every scope of one build)
    streams: dict[str, Shape] = field(default_factory=dict)

    def child(self) -> _Env:
        return _Env(self.symbols, dict(self.local), self.streams)


#: words with a meaning of their own, which cannot name a symbol
RESERVED = ("true", "false", "none", "block", "model", "repeat", "residual", "parallel", "part")

_FUNCS: dict[str, Any] = {
    "ceil": sympy.ceiling,
    "floor": sympy.floor,
    "min": sympy.Min,
    "max": sympy.Max,
}


def _binop(op: str, a: sympy.Expr, b: sympy.Expr, span: Span) -> sympy.Expr:
    match op:
        case "+":
            return a + b
        case "-":
            return a - b
        case "*":
            return a * b
        case "/":
            return a / b
        case "//":
            return sympy.floor(a / b)
        case "%":
            return sympy.Mod(a, b)
        case "^":
            if b.is_Rational and not a.is_number and exponent_too_large(_fraction(b)):
                raise SemanticError(
                    f"the power {_short(a)}^{_short(b)} is too large for every value of "
                    f"{str(a)[:40]} but 0 and 1: symmem computes with numbers below "
                    f"10^{MAX_DIGITS} (docs/limits.md)",
                    span,
                )
            if a.is_number and b.is_number and _power_too_large(a, b):
                raise SemanticError(
                    f"the power {_short(a)}^{_short(b)} is too large: symmem computes with "
                    f"numbers below 10^{MAX_DIGITS} (docs/limits.md)",
                    span,
                )
            out = a**b
            if out.has(sympy.zoo, sympy.nan):  # 0 ^ -1
                raise SemanticError("division by zero", span)
            if _non_real(out):  # (-1) ^ 0.5
                raise SemanticError(
                    f"{a}^{b} is not a real number (a fractional power of a negative number)", span
                )
            return out
    raise SemanticError(f"unknown operator {op}", span)  # pragma: no cover


def _power_too_large(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Would ``a^b`` (numbers) have more than MAX_DIGITS digits in its numerator or
    denominator?  Judged from the sizes of ``a`` and ``b``, before computing it."""
    if not (a.is_Rational and b.is_Rational):
        if a.is_zero or b.is_zero or a in (1, -1):
            return False
        try:
            return bool(abs(b) > MAX_DIGITS)
        except TypeError:  # a complex exponent: sympy refuses it later
            return False
    return power_too_large(_fraction(a), _fraction(b))


def _fraction(x: sympy.Rational) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def _short(x: sympy.Expr) -> str:
    text = str(x)
    text = text if len(text) <= 30 else f"{text[:12]}...({len(text)} characters)"
    return text if x.is_Integer and x >= 0 else f"({text})"


def _non_real(x: sympy.Expr) -> bool:
    """A number that is not real, judged numerically (sympy's assumptions can be wrong)."""
    if not x.is_number or x.is_Rational:
        return False
    try:
        return complex(x.evalf()).imag != 0
    except (TypeError, ValueError, OverflowError):
        return False


def _chain(expr: n.BinOp, env: _Env) -> sympy.Expr:
    """``a op b op c ...`` left to right, in a loop (a 10,000-term sum is not 10,000 frames
    deep), with runs of ``+``/``-`` and of ``*`` added or multiplied at once (linear time)."""
    links: list[n.BinOp] = []
    node: n.Expr = expr
    while isinstance(node, n.BinOp) and node.op != "^":
        links.append(node)
        node = node.left
    acc = to_sympy(node, env)
    run: list[sympy.Expr] = []
    run_op = ""
    for link in reversed(links):
        b = to_sympy(link.right, env)
        kind = "+" if link.op in "+-" else "*" if link.op == "*" else ""
        if run and kind != run_op:
            acc = sympy.Add(*run) if run_op == "+" else sympy.Mul(*run)
            run = []
        if kind:
            if not run:
                run, run_op = [acc], kind
            run.append(-b if link.op == "-" else b)
            continue
        acc = _apply(link, acc, b)
    if run:
        acc = sympy.Add(*run) if run_op == "+" else sympy.Mul(*run)
    _check_size(acc, expr.span)
    return acc


def _apply(link: n.BinOp, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    if link.op in ("/", "//", "%") and b == 0:
        raise SemanticError("division by zero", link.span)
    try:
        return _binop(link.op, a, b, link.span)
    except SymmemError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:  # sympy on odd numbers
        raise SemanticError(f"cannot compute {a} {link.op} {b}: {exc}", link.span) from None


def _check_size(value: sympy.Expr, span: Span) -> None:
    """A number of more than :data:`~symmem.limits.MAX_DIGITS` digits is refused where it
    is written (products of large literals)."""
    if value.is_Rational:
        try:
            check_int(abs(int(value.p)), "the value")
            check_int(int(value.q), "the value")
        except LimitError as exc:
            raise SemanticError(exc.message, span) from None


def to_sympy(expr: n.Expr, env: _Env) -> sympy.Expr:
    """An AST expression as a sympy expression (never ``sympify`` of user text)."""
    if isinstance(expr, n.Num):
        if isinstance(expr.value, Fraction):
            return sympy.Rational(expr.value.numerator, expr.value.denominator)
        return sympy.Integer(expr.value)
    if isinstance(expr, n.Name):
        if expr.id in env.local:
            th = env.local[expr.id]
            return to_sympy(th.expr, th.env)
        if expr.id in env.symbols:
            return env.symbols[expr.id]
        hint = suggest(expr.id, [*env.symbols, *env.local])
        raise SemanticError(
            f"unknown symbol '{expr.id}'",
            expr.span,
            hint=hint
            or "declare it at the top of the file: name = value, or a bare name for a free symbol",
        )
    if isinstance(expr, n.Neg):
        signs = 0
        while isinstance(expr, n.Neg):  # - - - x: a loop, not a recursion
            signs += 1
            expr = expr.operand
        inner = to_sympy(expr, env)
        return -inner if signs % 2 else inner
    if isinstance(expr, n.BinOp) and expr.op == "^":
        out = _apply(expr, to_sympy(expr.left, env), to_sympy(expr.right, env))
        _check_size(out, expr.span)
        return out
    if isinstance(expr, n.BinOp):
        return _chain(expr, env)
    if isinstance(expr, n.Call):
        if expr.func not in _FUNCS:
            hint = suggest(expr.func, list(_FUNCS))
            raise SemanticError(
                f"unknown function '{expr.func}'",
                expr.span,
                hint=hint or f"functions: {', '.join(_FUNCS)}",
            )
        args = [to_sympy(a, env) for a in expr.args]
        if expr.func in ("ceil", "floor") and len(args) != 1:
            raise SemanticError(f"{expr.func}() takes one argument", expr.span)
        if not args:
            raise SemanticError(f"{expr.func}() needs arguments", expr.span)
        try:
            return _FUNCS[expr.func](*args)
        except (ValueError, TypeError) as exc:  # min(I, 2): no order
            raise SemanticError(f"{expr.func}(): {exc}", expr.span) from None
    if isinstance(expr, n.Str):
        raise SemanticError(f'expected a number, got the string "{expr.value}"', expr.span)
    if isinstance(expr, n.ShapeLit):
        raise SemanticError("expected a number, got a shape [...]", expr.span)
    raise SemanticError("unsupported expression")  # pragma: no cover


# ---------------------------------------------------------------- argument typing


def _word(expr: n.Expr, env: _Env) -> tuple[str, Span]:
    """A bare word (or string), following block parameters to their value."""
    if isinstance(expr, n.Name) and expr.id in env.local:
        th = env.local[expr.id]
        return _word(th.expr, th.env)
    if isinstance(expr, n.Name):
        return expr.id, expr.span
    if isinstance(expr, n.Str):
        return expr.value, expr.span
    if isinstance(expr, n.Num) and expr.value in (0, 1):
        return ("true" if expr.value == 1 else "false"), expr.span
    raise SemanticError("expected a name", expr.span)


def _convert(hint: Any, expr: n.Expr, env: _Env, what: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        if isinstance(expr, n.Name) and expr.id in ("none", "None") and expr.id not in env.local:
            return None
        words = [a for a in inner if get_origin(a) is Literal]
        others = [a for a in inner if a not in words]
        if words and (not others or _is_word(expr, env)):  # padding = "same" or a size
            return _convert(words[0], expr, env, what)
        return _convert(others[0], expr, env, what)
    if origin is typing.Annotated:
        base, *meta = get_args(hint)
        if "stream" in meta:
            return _stream(expr, env, what)
        if "ref" in meta:
            return _word(expr, env)[0]
        if "per_dim" in meta:  # one value for every dimension, or a list [h, w]
            items = _list(expr, env)
            if items is not None:
                return tuple(to_sympy(e, env) for e in items)
        value = to_sympy(expr, env)
        return value
    if hint is bool:
        word, span = _word(expr, env)
        if word.lower() in ("true", "yes", "on"):
            return True
        if word.lower() in ("false", "no", "off"):
            return False
        raise SemanticError(f"{what} must be true or false, not '{word}'", span)
    if origin is Literal:
        choices = [str(c) for c in get_args(hint)]
        word, span = _word(expr, env)
        if word not in choices:
            h = suggest(word, choices)
            raise SemanticError(
                f"{what} must be one of {', '.join(choices)}; got '{word}'", span, hint=h
            )
        return word
    if hint is int:
        value = to_sympy(expr, env)
        if not value.is_Integer:
            raise SemanticError(f"{what} must be an integer constant", _span_of(expr))
        return int(value)
    if hint is str:
        return _word(expr, env)[0]
    return to_sympy(expr, env)


def _is_word(expr: n.Expr, env: _Env) -> bool:
    """A bare word that names no symbol, or a string (following block parameters)."""
    if isinstance(expr, n.Name) and expr.id in env.local:
        th = env.local[expr.id]
        return _is_word(th.expr, th.env)
    return isinstance(expr, n.Str) or (isinstance(expr, n.Name) and expr.id not in env.symbols)


def _list(expr: n.Expr, env: _Env) -> tuple[n.Expr, ...] | None:
    """The items of a list ``[a, b]`` (following block parameters), or None for a scalar."""
    if isinstance(expr, n.Name) and expr.id in env.local:
        th = env.local[expr.id]
        return _list(th.expr, th.env)
    if isinstance(expr, n.ShapeLit):
        if not expr.items:
            raise SemanticError("expected one value per dimension, got an empty list", expr.span)
        return expr.items
    return None


def _stream(expr: n.Expr, env: _Env, what: str) -> Shape:
    """A second input: a shape literal, or the name of a part built before."""
    if isinstance(expr, n.Name) and expr.id in env.local:
        th = expr.id
        return _stream(env.local[th].expr, env.local[th].env, what)
    if isinstance(expr, n.ShapeLit) and expr.items:
        return tuple(to_sympy(e, env) for e in expr.items)
    if isinstance(expr, n.Name | n.Str):
        name = expr.id if isinstance(expr, n.Name) else expr.value
        if name in env.streams:
            return env.streams[name]
        hint = suggest(name, list(env.streams))
        raise SemanticError(
            f"{what} = {name}: no part named '{name}' is built before this layer",
            expr.span,
            hint=hint or "a part reads the output of an earlier part: part encoder(...) { }",
        )
    raise SemanticError(f"{what} must name an earlier part or be a shape [...]", expr.span)


def _span_of(expr: n.Expr) -> Span:
    return expr.span


# ---------------------------------------------------------------- builder


@record
class _Ctx:
    """Where a statement sits: its path prefix and the scope for its names."""

    prefix: str
    env: _Env
    blocks_in_use: tuple[str, ...]


class _Builder:
    def __init__(
        self, program: n.Program, overrides: Mapping[str, Any] | None, free: typing.Iterable[str]
    ) -> None:
        self.program = program
        self.symbols: dict[str, sympy.Symbol] = {}
        self.defaults: dict[sympy.Symbol, sympy.Expr] = {}
        self.blocks: dict[str, n.BlockDef] = {}
        self.models: list[n.ModelDef] = []
        self.layer_names: dict[str, LayerNode] = {}
        self.symbol_spans: dict[str, Span] = {}
        self.kinds = layer_index
        self.overrides = overrides
        self.free = tuple(free)
        self._collect()
        self.values = resolve_values(
            self.defaults, self.symbols, overrides, self.free, self.symbol_spans
        )
        self.ev = evaluator(self.values)
        self.constraints: list[Constraint] = []
        self.streams: dict[str, Shape] = {}
        self.parts: list[str] = []

    def _collect(self) -> None:
        for name in IMPLICIT_FREE:
            self.symbols[name] = sym(name)
        pending: list[n.SymbolDef] = []
        for item in self.program.items:
            if isinstance(item, n.SymbolDef):
                if item.name in self.symbols and item.name not in IMPLICIT_FREE:
                    raise SemanticError(f"symbol '{item.name}' is declared twice", item.span)
                if item.name in _FUNCS or item.name in RESERVED:
                    raise SemanticError(
                        f"'{item.name}' is a reserved word and cannot be a symbol", item.span
                    )
                self.symbols[item.name] = sym(item.name)
                self.symbol_spans[item.name] = item.span
                pending.append(item)
            elif isinstance(item, n.BlockDef):
                if item.name in self.blocks:
                    raise SemanticError(f"block '{item.name}' is defined twice", item.span)
                if item.name in self.kinds:
                    raise SemanticError(
                        f"block '{item.name}' has the name of a layer kind", item.span
                    )
                self.blocks[item.name] = item
            else:
                self.models.append(item)
        env = _Env(self.symbols)
        for item in pending:
            if item.default is not None:
                value = to_sympy(item.default, env)
                self.defaults[self.symbols[item.name]] = value

    # ------------------------------------------------------------ model
    def build(self, model_name: str | None) -> LayerGraph:
        if not self.models:
            raise SemanticError("no model: add `model name(input = [batch, seq_len]) { ... }`")
        if model_name is None:
            if len(self.models) > 1:
                names = ", ".join(m.name for m in self.models)
                raise SemanticError(
                    f"several models ({names}): choose one with --model NAME (model=NAME in Python)"
                )
            mdef = self.models[0]
        else:
            found = [m for m in self.models if m.name == model_name]
            if not found:
                hint = suggest(model_name, [m.name for m in self.models])
                raise SemanticError(f"no model named '{model_name}'", hint=hint)
            mdef = found[0]
        given = set(as_mapping(self.overrides, "set_values"))
        for name, s in self.symbols.items():
            if name in given:  # the value came from --set, not from the file
                self._require(
                    cons.nonneg(
                        s,
                        lambda v, name=name: f"--set {name}={v}: '{name}' must not be negative",
                    ),
                    "",
                    None,
                )
            else:
                self._require(
                    cons.nonneg(s, lambda v, s=s: f"symbol '{s}' must not be negative, got {v}"),
                    "",
                    self.symbol_spans.get(name),
                )
        env = _Env(self.symbols, streams=self.streams)
        input_shape: Shape = (self.symbols["batch"], self.symbols["seq_len"])
        options: dict[str, str] = {}
        for arg in mdef.args:
            if arg.keyword is None:
                raise SemanticError("model arguments are keywords: input = [...], ...", arg.span)
            if arg.keyword == "input":
                input_shape = self._input(arg, env)
            elif arg.keyword in MODEL_OPTIONS:
                word, span = _word(arg.value, env)
                if word not in MODEL_OPTIONS[arg.keyword]:
                    raise SemanticError(
                        f"{arg.keyword} must be one of {', '.join(MODEL_OPTIONS[arg.keyword])}",
                        span,
                    )
                options[arg.keyword] = word
            elif arg.keyword in MODEL_NUMBERS:
                value = self.ev(to_sympy(arg.value, env))
                if value is None or value < 1 or not _whole(value):
                    raise SemanticError(
                        f"{arg.keyword} must be a whole number >= 1", arg.value.span
                    )
                options[arg.keyword] = str(int(value))
            else:
                hint = suggest(arg.keyword, ["input", *MODEL_OPTIONS, *MODEL_NUMBERS])
                raise SemanticError(f"unknown model option '{arg.keyword}'", arg.span, hint=hint)
        if "group_size" in options and "quantization" not in options:
            raise SemanticError(
                "group_size is the quantization's: declare quantization = ... with it", mdef.span
            )
        if "mtp" in options and MTP_SYMBOL not in self.symbols:
            raise SemanticError(
                f"mtp = {options['mtp']} declares multi-token-prediction modules: the model "
                f"counts them with a symbol {MTP_SYMBOL} (repeat {MTP_SYMBOL} mtp {{ ... }})",
                mdef.span,
            )
        ctx = _Ctx("", env, ())
        body, out = self._body(mdef.body, input_shape, ctx, mdef.span)
        if body and isinstance(body[0], GroupNode) and body[0].kind == "part":
            input_shape = body[0].in_shape  # the first part reads the model's input
        root = GroupNode("", "model", mdef.name, body, input_shape, out, mdef.span)
        return LayerGraph(
            mdef.name,
            dict(self.symbols),
            dict(self.defaults),
            input_shape,
            root,
            options,
            tuple(self.constraints),
            tuple(self.parts),
            self._generating(body),
        )

    def _generating(self, body: tuple[Node, ...]) -> str | None:
        """The last part, when one of its layers attends causally (it generates)."""
        parts = [b for b in body if isinstance(b, GroupNode) and b.kind == "part"]
        if not parts:
            return None
        for node, _ in _walk(parts[-1], sympy.Integer(1)):
            if node.layer.attends() == "causal":
                return parts[-1].name
        return None

    def _input(self, arg: n.Arg, env: _Env) -> Shape:
        if not isinstance(arg.value, n.ShapeLit) or not arg.value.items:
            raise SemanticError("input must be a shape like [batch, seq_len]", arg.span)
        return tuple(self._size(e, env, "input dimension") for e in arg.value.items)

    def _part(self, stmt: n.PartStmt, ctx: _Ctx) -> GroupNode:
        """A named part: its own input (``input = [...]``, by default the implicit
        [batch, seq_len]), its body, its output shape kept for the layers that read it."""
        if ctx.prefix or ctx.blocks_in_use:
            raise SemanticError("a part is a statement of the model itself", stmt.span)
        if stmt.name in self.streams:
            raise SemanticError(f"two parts are named '{stmt.name}'", stmt.span)
        shape: Shape = (self.symbols["batch"], self.symbols["seq_len"])
        for arg in stmt.args:
            if arg.keyword != "input":
                raise SemanticError(
                    "a part takes one argument: input = [...] (its input's shape)", arg.span
                )
            shape = self._input(arg, ctx.env)
        body, out = self._body(stmt.body, shape, _Ctx(stmt.name, ctx.env, ()), stmt.span)
        self.streams[stmt.name] = out
        self.parts.append(stmt.name)
        return GroupNode(stmt.name, "part", stmt.name, body, shape, out, stmt.span)

    def _require(
        self, c: Constraint, where: str, span: Span | None, hint: str | None = None
    ) -> None:
        """Check ``c`` at the build's values (SemanticError at ``span``) and keep it."""
        c = c.at(where, span)
        try:
            message = c.violation(self.ev, self.ev.exact)  # type: ignore[attr-defined]
        except SemanticError as exc:  # a division by zero at the values: say where
            raise SemanticError(exc.message, exc.span or span) from None
        if message is not None:
            raise SemanticError(message, span, hint=hint)
        self.constraints.append(c)

    def _size(self, expr: n.Expr, env: _Env, what: str) -> sympy.Expr:
        value = to_sympy(expr, env)
        self._require(
            cons.positive(value, lambda v: f"{what} must be positive, got {value} = {v}"),
            "",
            expr.span,
        )
        self._require(
            cons.whole(value, lambda v: f"{what} must be a whole number, got {value} = {v:g}"),
            "",
            expr.span,
        )
        return value

    # ------------------------------------------------------------ bodies
    def _body(
        self, stmts: tuple[n.Stmt, ...], shape: Shape, ctx: _Ctx, span: Span
    ) -> tuple[tuple[Node, ...], Shape]:
        out: list[Node] = []
        used: dict[str, int] = {}
        env = ctx.env.child()
        local_ctx = _Ctx(ctx.prefix, env, ctx.blocks_in_use)
        prev: Node | None = None

        def unique(base: str) -> str:
            k = used.get(base, 0)
            used[base] = k + 1
            return base if k == 0 else f"{base}_{k}"

        for stmt in stmts:
            if isinstance(stmt, n.AssignStmt):
                if stmt.name in env.symbols and stmt.name not in env.local:
                    raise SemanticError(
                        f"'{stmt.name}' is a global symbol and cannot be reassigned here", stmt.span
                    )
                to_sympy(stmt.value, env)  # check it reads
                env.local[stmt.name] = _Thunk(stmt.value, env.child())
                continue
            if isinstance(stmt, n.RepeatStmt):
                count = to_sympy(stmt.count, env)
                self._require(
                    cons.Constraint(
                        (("whole", count), ("nonneg", count)),
                        (count,),
                        lambda v, count=count: (
                            f"repeat count must be a whole number >= 0, got {count} = {v}"
                        ),
                    ),
                    "",
                    stmt.span,
                )
                path = _join(ctx.prefix, unique(stmt.name or "repeat"))
                body, body_out = self._body(
                    stmt.body, shape, _Ctx(path, env, ctx.blocks_in_use), stmt.span
                )
                if not _same_shape(body_out, shape):
                    raise ShapeError(
                        f"the body of repeat '{path}' changes the shape {fmt_shape(shape)} into "
                        f"{fmt_shape(body_out)}, so it cannot be repeated",
                        stmt.span,
                    )
                node: Node = GroupNode(
                    path,
                    "repeat",
                    stmt.name or "repeat",
                    body,
                    shape,
                    body_out,
                    stmt.span,
                    count,
                    stmt.shared,
                )
            elif isinstance(stmt, n.ResidualStmt):
                path = _join(ctx.prefix, unique(stmt.name or "residual"))
                body, body_out = self._body(
                    stmt.body, shape, _Ctx(path, env, ctx.blocks_in_use), stmt.span
                )
                if not _same_shape(body_out, shape):
                    raise ShapeError(
                        f"residual '{path}' adds its input {fmt_shape(shape)} to its output "
                        f"{fmt_shape(body_out)}: the shapes differ",
                        stmt.span,
                    )
                node = GroupNode(
                    path, "residual", stmt.name or "residual", body, shape, shape, stmt.span
                )
            elif isinstance(stmt, n.PartStmt):
                node = self._part(stmt, local_ctx)
            elif isinstance(stmt, n.ParallelStmt):
                path = _join(ctx.prefix, unique(stmt.name or "parallel"))
                branches: list[Node] = []
                out_shape: Shape | None = None
                for i, branch in enumerate(stmt.branches):
                    bpath = f"{path}.{i}"
                    bbody, bout = self._body(
                        branch, shape, _Ctx(bpath, env, ctx.blocks_in_use), stmt.span
                    )
                    if out_shape is not None and not _same_shape(bout, out_shape):
                        raise ShapeError(
                            f"the branches of parallel '{path}' are summed but give different "
                            f"shapes: {fmt_shape(out_shape)} (branch 0) and {fmt_shape(bout)} "
                            f"(branch {i})",
                            stmt.span,
                        )
                    out_shape = bout if out_shape is None else out_shape
                    branches.append(
                        GroupNode(bpath, "branch", str(i), bbody, shape, bout, stmt.span)
                    )
                assert out_shape is not None  # the grammar requires one branch
                node = GroupNode(
                    path,
                    "parallel",
                    stmt.name or "parallel",
                    tuple(branches),
                    shape,
                    out_shape,
                    stmt.span,
                )
            else:
                node = self._layer_stmt(stmt, shape, local_ctx, unique, prev)
            out.append(node)
            shape = node.out_shape
            prev = node
        return tuple(out), shape

    def _layer_stmt(
        self, stmt: n.LayerStmt, shape: Shape, ctx: _Ctx, unique: Any, prev: Node | None
    ) -> Node:
        if stmt.kind in self.blocks:
            return self._block_use(stmt, shape, ctx, unique)
        # catalogue(): every kind loaded, should the generated index be stale
        if stmt.kind not in self.kinds and stmt.kind not in catalogue():
            hint = (
                suggest(stmt.kind, [*self.kinds, *self.blocks])
                or "`symmem kinds` lists the layer kinds"
            )
            raise SemanticError(
                f"unknown layer kind or block '{stmt.kind}'", stmt.kind_span, hint=hint
            )
        cls = self.kinds[stmt.kind]
        path = _join(ctx.prefix, unique(stmt.name or cls.kind))
        layer, signs = _instantiate(cls, stmt, ctx.env)
        for constraint, span in signs:
            self._require(constraint, "", span)
        recorder = cons.Recorder()
        try:
            layer.validate(recorder)
        except SymmemError as exc:
            raise SemanticError(
                f"{cls.kind} '{path}': {exc.message}", stmt.span, hint=exc.hint
            ) from None
        for constraint in recorder.found:
            self._require(constraint, f"{cls.kind} '{path}': ", stmt.span)
        tie = getattr(layer, "tie", None)
        tie_path = None
        if tie is not None:
            target = self.layer_names.get(tie)
            if target is None:
                tie_hint = suggest(tie, list(self.layer_names))
                raise SemanticError(
                    f"tie = {tie}: no earlier layer is named '{tie}'", stmt.span, hint=tie_hint
                )
            mine = {t.name: t for t in layer.tensors()}
            theirs = {t.name: t for t in target.layer.tensors()}
            if (
                "weight" not in mine
                or "weight" not in theirs
                or not same(mine["weight"].numel, theirs["weight"].numel)
            ):
                raise SemanticError(
                    f"tie = {tie}: '{path}' and '{target.path}' do not have weights of the same "
                    "size",
                    stmt.span,
                )
            tie_path = target.path
        try:
            out_shape = layer.output_shape(shape)
        except ShapeError as exc:
            src = f"'{_last_layer(prev)}'" if prev is not None else "the model input"
            raise ShapeError(
                f"shape mismatch: {src} gives {fmt_shape(shape)}, but {cls.kind} '{path}' "
                f"{exc.message}",
                stmt.span,
            ) from None
        for constraint in layer.shape_requires(shape):
            self._require(constraint, f"{cls.kind} '{path}': ", stmt.span)
        for i, dim in enumerate(out_shape):  # convolutions / pools whose window exceeds the input
            self._require(
                cons.positive(dim, _dim_message(cls.kind, path, shape, out_shape, i, dim)),
                "",
                stmt.span,
            )
        node = LayerNode(path, layer, shape, out_shape, stmt.span, tie_path)
        if stmt.name:
            if stmt.name in self.layer_names and ctx.prefix == "":
                raise SemanticError(f"two layers are named '{stmt.name}'", stmt.span)
            self.layer_names.setdefault(stmt.name, node)
        self.layer_names[path] = node
        return node

    def _block_use(self, stmt: n.LayerStmt, shape: Shape, ctx: _Ctx, unique: Any) -> Node:
        block = self.blocks[stmt.kind]
        if len(ctx.blocks_in_use) >= MAX_NESTING:
            raise SemanticError(
                f"blocks used inside blocks more than {MAX_NESTING} deep "
                f"({' -> '.join(ctx.blocks_in_use[:3])} -> ...); symmem builds up to "
                f"{MAX_NESTING} levels (docs/limits.md)",
                stmt.span,
            )
        if block.name in ctx.blocks_in_use:
            chain = " -> ".join([*ctx.blocks_in_use, block.name])
            raise SemanticError(f"circular block use: {chain}", stmt.span)
        env = _Env(self.symbols, streams=self.streams)
        names = [p.name for p in block.params]
        bound: dict[str, _Thunk] = {}
        positional = [a for a in stmt.args if a.keyword is None]
        if len(positional) > len(names):
            raise SemanticError(
                f"block '{block.name}' takes {len(names)} argument(s), got {len(positional)}",
                stmt.span,
            )
        for p, a in zip(block.params, positional, strict=False):
            bound[p.name] = _Thunk(a.value, ctx.env)
        for a in stmt.args:
            if a.keyword is None:
                continue
            if a.keyword not in names:
                hint = suggest(a.keyword, names)
                raise SemanticError(
                    f"block '{block.name}' has no parameter '{a.keyword}'", a.span, hint=hint
                )
            if a.keyword in bound:
                raise SemanticError(f"parameter '{a.keyword}' given twice", a.span)
            bound[a.keyword] = _Thunk(a.value, ctx.env)
        for p in block.params:
            if p.name not in bound:
                if p.default is None:
                    raise SemanticError(
                        f"block '{block.name}' needs argument '{p.name}'", stmt.span
                    )
                bound[p.name] = _Thunk(p.default, env)
        env.local.update(bound)
        path = _join(ctx.prefix, unique(stmt.name or block.name))
        body, out = self._body(
            block.body, shape, _Ctx(path, env, (*ctx.blocks_in_use, block.name)), block.span
        )
        return GroupNode(path, "block", block.name, body, shape, out, stmt.span)


def _whole(v: float) -> bool:
    return isinstance(v, int) or float(v).is_integer()


def _dim_message(
    kind: str, path: str, shape: Shape, out_shape: Shape, i: int, dim: sympy.Expr
) -> typing.Callable[[Any], str]:
    def message(v: Any) -> str:
        return (
            f"{kind} '{path}' turns its input {fmt_shape(shape)} into {fmt_shape(out_shape)}: "
            f"dimension {i} has the non-positive size {dim}"
            + (f" = {v}" if dim != v else "")
            + " at the given values (kernel larger than the padded input?)"
        )

    return message


def _sign_constraints(hint: Any, value: Any, name: str) -> list[Constraint]:
    """Sizes must be whole and positive, NonNeg values whole and >= 0."""
    metas: tuple[Any, ...] = ()
    for h in (hint, *get_args(hint)):
        if get_origin(h) is typing.Annotated:
            metas = get_args(h)[1:]
    if isinstance(value, tuple):  # a per-dimension list: each item as the scalar would be
        return [c for i, v in enumerate(value) for c in _sign_constraints(hint, v, f"{name}[{i}]")]
    if value is None or not isinstance(value, sympy.Expr):
        return []

    def shown(v: Any, fmt: str = "") -> str:
        # v is None when the value still has symbols (batch - 1/2 is whole at no batch)
        return f" = {v:{fmt}}" if v is not None and value != v else ""

    out: list[Constraint] = []
    if "size" in metas or "nonneg" in metas:
        out.append(
            cons.whole(
                value, lambda v: f"{name} must be a whole number, got {value}{shown(v, 'g')}"
            )
        )
    if "size" in metas:
        out.append(
            cons.positive(value, lambda v: f"{name} must be positive, got {value}{shown(v)}")
        )
    if "nonneg" in metas:
        out.append(cons.nonneg(value, lambda v: f"{name} must be >= 0, got {value}{shown(v)}"))
    return out


def _instantiate(
    cls: type[Layer], stmt: n.LayerStmt, env: _Env
) -> tuple[Layer, list[tuple[Constraint, Span]]]:
    """The layer, and the sign constraints of its arguments (each with its argument's span)."""
    hints = get_type_hints(cls, include_extras=True)
    flds = [f for f in fields(cls)]  # type: ignore[arg-type]
    names = [f.name for f in flds]
    given: dict[str, n.Arg] = {}
    positional = [a for a in stmt.args if a.keyword is None]
    seen_kw = False
    for a in stmt.args:
        if a.keyword is not None:
            seen_kw = True
        elif seen_kw:
            raise SemanticError("a positional argument cannot follow a keyword argument", a.span)
    if len(positional) > len(names):
        raise SemanticError(
            f"{cls.kind} takes at most {len(names)} positional arguments ({', '.join(names)}), "
            f"got {len(positional)}",
            stmt.span,
        )
    for f, a in zip(flds, positional, strict=False):
        given[f.name] = a
    for a in stmt.args:
        if a.keyword is None:
            continue
        if a.keyword not in names:
            hint = suggest(a.keyword, names)
            raise SemanticError(
                f"{cls.kind} has no argument '{a.keyword}'",
                a.span,
                hint=hint or f"its arguments: {', '.join(names)}",
            )
        if a.keyword in given:
            raise SemanticError(f"argument '{a.keyword}' given twice", a.span)
        given[a.keyword] = a
    kwargs: dict[str, Any] = {}
    signs: list[tuple[Constraint, Span]] = []
    for f in flds:
        if f.name in given:
            a = given[f.name]
            kwargs[f.name] = _convert(hints[f.name], a.value, env, f.name)
            signs.extend(
                (c, a.span) for c in _sign_constraints(hints[f.name], kwargs[f.name], f.name)
            )
        elif f.default is MISSING and f.default_factory is MISSING:
            raise SemanticError(
                f"{cls.kind} needs argument '{f.name}' ({', '.join(names)})", stmt.span
            )
    return cls(**kwargs), signs


def _last_layer(node: Node) -> str:
    """The path of the layer that produced a node's output (a group's last layer)."""
    while isinstance(node, GroupNode) and node.body and node.kind not in ("parallel",):
        node = node.body[-1]
    return node.path


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _same_shape(a: Shape, b: Shape) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))


def build(
    program: n.Program,
    *,
    model: str | None = None,
    set_values: Mapping[str, Any] | None = None,
    free: typing.Iterable[str] = (),
) -> LayerGraph:
    """Check a parsed program and build the graph of its model.

    ``set_values`` and ``free`` only affect the values at which sizes are
    checked (positivity, integer head_dim...): the graph stays symbolic.
    """
    return _Builder(program, set_values, free).build(model)
