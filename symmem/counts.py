"""Exact parameter counts of a layer graph: the total, active per token, buffers, per layer.

Layers give their parameter tensors (:meth:`symmem.layers.base.Layer.tensors`);
this module adds them up over the graph, once per ``repeat`` instance (once for a
``shared`` repeat, whose iterations use one set of weights), with the
conventions of docs/conventions.md (tied weights counted once at their owner,
buffers apart, ``active_embeddings``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field

import sympy

from symmem.errors import SemanticError
from symmem.graph import MODEL_OPTIONS, LayerGraph, LayerNode
from symmem.quantity import Quantity
from symmem.records import record
from symmem.rich import table_html

#: the values of the ``active_embeddings`` convention (docs/conventions.md)
ACTIVE_EMBEDDINGS = MODEL_OPTIONS["active_embeddings"]


@record
class LayerParams:
    """One row of the per-layer table."""

    path: str
    kind: str
    #: parameters of one instance, in the layer's symbols
    formula: sympy.Expr
    #: how many sets of weights (product of enclosing ``repeat`` counts, a ``shared`` repeat
    #: counting once)
    multiplicity: sympy.Expr
    #: active parameters of one instance (MoE: experts used per token)
    active_formula: sympy.Expr
    #: buffers of one instance (batchnorm running stats, router bias...)
    buffers_formula: sympy.Expr
    tied_to: str | None = None

    @property
    def count(self) -> sympy.Expr:
        return self.multiplicity * self.formula


@record
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
    #: each part's total (``part encoder(...) { }``), in order; empty for a one-part model
    parts: tuple[tuple[str, Quantity], ...] = ()

    def _repr_html_(self) -> str:
        """Jupyter: the totals and each layer's count (all its repeat instances)."""
        rows: list[tuple[str, object]] = [("total", self.total.evaluate())]
        if self.has_experts:
            rows.append(("active per token", self.active.evaluate()))
        if self.buffers.expr != 0:
            rows.append(("buffers", self.buffers.evaluate()))
        rows += [(r.path, self.total.with_expr(r.count).evaluate()) for r in self.rows]
        return table_html(rows, caption="parameters", bytes_column=False, label="layer")


def _token_table(node: LayerNode) -> bool:
    """Is this layer a token-embedding table (what ``active_embeddings = exclude`` leaves out)?"""
    return node.layer.reads_token_ids


def param_counts(
    graph: LayerGraph,
    quantity: Callable[[sympy.Expr], Quantity],
    *,
    active_embeddings: str | None = None,
    include_buffers: bool = False,
) -> ParamsResult:
    """Exact parameter counts of ``graph``; ``quantity`` wraps an expression with the model's
    values.

    ``active_embeddings`` ("count" or "exclude"): whether active-per-token counts
    include token-embedding tables; default from the model header, else "count".
    ``include_buffers``: count buffers that a checkpoint stores (batchnorm running
    statistics, DeepSeek-V3's router ``e_score_correction_bias``) as parameters,
    the way a checkpoint's tensor count does; PyTorch's ``parameters()`` does not.
    """
    conv = active_embeddings or graph.options.get("active_embeddings", "count")
    if conv not in ACTIVE_EMBEDDINGS:
        raise SemanticError(f"active_embeddings must be 'count' or 'exclude', not '{conv}'")
    rows: list[LayerParams] = []
    total, active, buffers = [], [], []
    has_experts = False
    for node, mult in graph.walk_weights():
        tensors = node.layer.tensors()
        params = [
            t
            for t in tensors
            if (include_buffers or not t.buffer) and not (node.tie and t.name == "weight")
        ]
        bufs = [t for t in tensors if t.buffer and not include_buffers]
        skip_active = conv == "exclude" and _token_table(node)
        formula = sympy.Add(*[t.numel for t in params])
        act = sympy.Add(*[t.active_numel for t in params if not (skip_active and t.lookup)])
        has_experts = has_experts or any(t.active is not None for t in params)
        buf = sympy.Add(*[t.numel for t in bufs])
        rows.append(LayerParams(node.path, node.layer.kind, formula, mult, act, buf, node.tie))
        total.append(mult * formula)
        active.append(mult * act)
        buffers.append(mult * buf)
    per_part: dict[str, list[sympy.Expr]] = {p: [] for p in graph.parts}
    for row in rows:
        part = graph.part_of(row.path)
        if part is not None:
            per_part[part].append(row.count)
    return ParamsResult(
        quantity(sympy.Add(*total)),
        quantity(sympy.Add(*active)),
        quantity(sympy.Add(*buffers)),
        tuple(rows),
        conv,
        has_experts,
        parts=tuple((p, quantity(sympy.Add(*c))) for p, c in per_part.items()),
    )
