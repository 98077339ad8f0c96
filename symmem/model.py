"""The Python API: a loaded model and the quantities it answers for.

``symmem.load(path)`` / ``symmem.parse(text)`` give a :class:`Model`; its
methods return result objects that carry sympy expressions and evaluate them
at the model's values (defaults, ``set``) on request.  Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy

from symmem import graph as g
from symmem.errors import SemanticError, SymmemError
from symmem.syntax import parse as parse_text


def _exact(expr: sympy.Expr) -> int | sympy.Expr:
    """An int when the expression is an integer number, else the expression."""
    expr = sympy.sympify(expr)
    if expr.is_Integer:
        return int(expr)
    if expr.is_number:
        simplified = sympy.nsimplify(expr)
        if simplified.is_Integer:
            return int(simplified)
        return simplified
    return expr


@dataclass(frozen=True)
class LayerParams:
    """One row of the per-layer table."""

    path: str
    kind: str
    #: parameters of one instance, in the layer's symbols
    formula: sympy.Expr
    #: how many instances (product of enclosing ``repeat`` counts)
    multiplicity: sympy.Expr
    #: active parameters of one instance (MoE: experts used per token)
    active_formula: sympy.Expr
    #: buffers of one instance (batchnorm running stats, router bias...)
    buffers_formula: sympy.Expr
    tied_to: str | None = None

    @property
    def count(self) -> sympy.Expr:
        return self.multiplicity * self.formula


@dataclass(frozen=True)
class Quantity:
    """A sympy expression together with the values it is usually evaluated at."""

    expr: sympy.Expr
    values: Mapping[sympy.Symbol, sympy.Expr]
    symbols: Mapping[str, sympy.Symbol]

    def _subs(self, overrides: Mapping[str, Any]) -> dict[sympy.Symbol, sympy.Expr]:
        values = dict(self.values)
        for name, v in overrides.items():
            if name not in self.symbols:
                raise SemanticError(f"unknown symbol '{name}'")
            values[self.symbols[name]] = sympy.sympify(v)
        return values

    def evaluate(self, **values: Any) -> int | sympy.Expr:
        """The exact value at the model's values, overridden by ``values``.

        Returns an int when every symbol has a value, else the remaining expression.
        """
        subs = self._subs(values)
        out = self.expr
        for _ in range(3):  # values may refer to symbols that have values
            new = out.xreplace(subs)
            if new == out:
                break
            out = new
        return _exact(out)

    def simplified(self) -> sympy.Expr:
        return sympy.expand(self.expr)

    def __int__(self) -> int:
        value = self.evaluate()
        if not isinstance(value, int):
            raise SymmemError(f"not a number: free symbols remain in {value}")
        return value

    # -- solve, diff, latex, sweep, leading (symmem/solve.py, calculus.py, sweep.py, export.py)
    def solve(self, budget: int | str, for_: str = "batch", **kwargs: Any) -> Any:
        """The largest integer ``for_`` with this quantity <= ``budget`` (bytes or "24GB"); exact.

        Returns :class:`symmem.solve.SolveResult`.
        """
        from symmem.solve import solve

        return solve(self, budget, for_, **kwargs)

    def diff(self, *symbols: str) -> Quantity:
        """The (mixed) partial derivative with respect to ``symbols``, as a Quantity."""
        from symmem.calculus import diff

        return diff(self, *symbols)

    def leading(self, size: Iterable[str] | None = None, at: Mapping[sympy.Symbol, Any] | None = None) -> Any:
        """The leading-order terms in the large-size limit (:class:`symmem.calculus.Leading`)."""
        from symmem.calculus import leading

        return leading(self, size, at)

    def latex(self) -> str:
        """The expression as LaTeX with readable symbol names."""
        from symmem.export import latex

        return latex(self.expr, self.symbols)

    def sweep(self, **grids: Any) -> Any:
        """Exact values over a grid (``batch="1:64"``, ``seq_len=[512, 1024]``): a pandas
        DataFrame when pandas is installed, else a dict of numpy arrays."""
        from symmem.sweep import sweep

        return sweep(self, grids)


@dataclass(frozen=True)
class ParamsResult:
    """Parameter counts: the total, active-per-token, buffers, and the per-layer rows."""

    total: Quantity
    active: Quantity
    buffers: Quantity
    rows: tuple[LayerParams, ...]
    active_embeddings: str
    #: does any layer have experts (so that active differs in kind from total)?
    has_experts: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


class Model:
    """A checked model: its layer graph and the values of its symbols."""

    def __init__(
        self,
        graph: g.LayerGraph,
        *,
        set_values: Mapping[str, Any] | None = None,
        free: Iterable[str] = (),
        source: str | None = None,
        filename: str | None = None,
    ) -> None:
        self.graph = graph
        self.source = source
        self.filename = filename
        self.set_values = dict(set_values or {})
        self.free = tuple(free)
        self.values = g.resolve_values(graph.defaults, graph.symbols, self.set_values, self.free)

    # ------------------------------------------------------------ basics
    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def symbols(self) -> dict[str, sympy.Symbol]:
        return dict(self.graph.symbols)

    def symbol(self, name: str) -> sympy.Symbol:
        if name not in self.graph.symbols:
            from symmem.errors import suggest

            hint = suggest(name, list(self.graph.symbols))
            raise SemanticError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
        return self.graph.symbols[name]

    def quantity(self, expr: sympy.Expr) -> Quantity:
        return Quantity(sympy.sympify(expr), self.values, self.graph.symbols)

    def with_values(self, set_values: Mapping[str, Any] | None = None, free: Iterable[str] = ()) -> Model:
        """A copy with other symbol values (``set``) or symbols kept symbolic (``free``)."""
        merged = {**self.set_values, **(set_values or {})}
        return Model(self.graph, set_values=merged, free=(*self.free, *free), source=self.source, filename=self.filename)

    # ------------------------------------------------------------ parameters
    def params(self, *, active_embeddings: str | None = None, include_buffers: bool = False) -> ParamsResult:
        """Exact parameter counts.

        ``active_embeddings`` ("count" or "exclude"): whether active-per-token
        counts include input-embedding tables; default from the model header,
        else "count".  ``include_buffers``: count buffers that a checkpoint
        stores (batchnorm running statistics, DeepSeek-V3's router
        ``e_score_correction_bias``) as parameters, the way a checkpoint's
        tensor count does; PyTorch's ``parameters()`` does not.  See
        docs/conventions.md.
        """
        conv = active_embeddings or self.graph.options.get("active_embeddings", "count")
        if conv not in g.MODEL_OPTIONS["active_embeddings"]:
            raise SemanticError(f"active_embeddings must be 'count' or 'exclude', not '{conv}'")
        rows: list[LayerParams] = []
        total = sympy.Integer(0)
        active = sympy.Integer(0)
        buffers = sympy.Integer(0)
        has_experts = False
        for node, mult in self.graph.walk():
            tensors = node.layer.tensors()
            params = [
                t for t in tensors if (include_buffers or not t.buffer) and not (node.tie and t.name == "weight")
            ]
            bufs = [t for t in tensors if t.buffer and not include_buffers]
            formula = sympy.Add(*[t.numel for t in params])
            act = sympy.Add(
                *[
                    t.active_numel
                    for t in params
                    if not (conv == "exclude" and t.lookup and node.layer.kind == "embedding")
                ]
            )
            has_experts = has_experts or any(t.active is not None for t in params)
            buf = sympy.Add(*[t.numel for t in bufs])
            rows.append(LayerParams(node.path, node.layer.kind, formula, mult, act, buf, node.tie))
            total += mult * formula
            active += mult * act
            buffers += mult * buf
        return ParamsResult(
            self.quantity(total),
            self.quantity(active),
            self.quantity(buffers),
            tuple(rows),
            conv,
            has_experts,
        )

    # ------------------------------------------------------------ memory
    def memory(self, mode: str = "train", **options: Any) -> Any:
        """Bytes per GPU of a training step (``mode="train"``) or of inference (``"infer"``):
        a :class:`symmem.memory.MemoryResult` with one :class:`Quantity` per component
        (weights, gradients, optimizer, activations, transient, kv_cache, overhead, total).
        ``options`` are those of :func:`symmem.memory.memory` (docs/memory.md)."""
        from symmem.memory import memory_with_options

        return memory_with_options(self, mode, options)


def parse(text: str, *, filename: str | None = None, model: str | None = None,
          set_values: Mapping[str, Any] | None = None, free: Iterable[str] = ()) -> Model:
    """Parse DSL text and check it into a :class:`Model`.

    Errors are :class:`~symmem.errors.SymmemError` with the source attached,
    so ``str(err)`` shows file:line:column and a caret.
    """
    free = tuple(free)
    try:
        program = parse_text(text, filename)
        graph = g.build(program, model=model, set_values=set_values, free=free)
        return Model(graph, set_values=set_values, free=free, source=text, filename=filename)
    except SymmemError as exc:
        raise exc.with_source(text, filename) from None


def load(path: str | Path, *, model: str | None = None,
         set_values: Mapping[str, Any] | None = None, free: Iterable[str] = ()) -> Model:
    """Load a ``.mem`` file, a Hugging Face ``config.json`` or a bundled model name."""
    from symmem.sources import read_source

    text, filename = read_source(path)
    return parse(text, filename=filename, model=model, set_values=set_values, free=free)
