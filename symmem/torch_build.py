"""A :class:`~symmem.graph.LayerGraph` as a real ``torch.nn.Module`` (extra ``validate``).

Each layer becomes its kind's ``to_torch(ev)``; a ``repeat`` becomes ``count``
real, independent copies (the check runs at small sizes, so unrolling is
affordable and the measured memory is that of the real network), a ``shared``
repeat one copy run ``count`` times; a
``residual`` computes ``x + f(x)``; a ``parallel`` sums its branches (an empty
branch is the identity); a layer with ``tie = other`` gets the very
``Parameter`` object of ``other`` (so PyTorch counts it once, as
``model.parameters()`` does for Hugging Face's tied LM heads).

A model of parts (``part encoder(...) { }``) becomes one module whose forward takes a tuple
of inputs, one per part in order: each part runs on its own input and its output is kept by
name; a layer that reads another part's output (``Layer.reads_stream``: a cross-attention's
``memory``) is given that tensor, the latest earlier part whose output has the memory's
shape (one tensor for every layer reading it, as in the reference models); what follows
the parts in the model body reads the last part's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import sympy
import torch
from torch import nn

from symmem import graph as g
from symmem.errors import SemanticError
from symmem.layers.base import Layer
from symmem.policy import ActPolicy, Attention
from symmem.values import substitute


def int_evaluator(values: Mapping[sympy.Symbol, sympy.Expr]) -> Any:
    """ev(expr) -> int, for sizes; raises SemanticError if a symbol has no value."""
    ev = g.evaluator(values)

    def to_int(expr: sympy.Expr) -> int:
        value = ev(expr)
        if value is None:
            free = ", ".join(
                sorted(str(s) for s in substitute(sympy.sympify(expr), dict(values)).free_symbols)
            )
            raise SemanticError(
                f"cannot build the network: {expr} needs a value for {free} (use --set)"
            )
        if not float(value).is_integer():
            raise SemanticError(f"cannot build the network: {expr} = {value} is not a whole number")
        return int(value)

    return to_int


def _concrete(
    layer: Layer, values: Mapping[sympy.Symbol, sympy.Expr], dropout: bool = True
) -> Layer:
    """The layer with every symbolic argument replaced by its value (dropout p = p_drop...),
    so that ``to_torch`` can call ``float()`` on it; with ``dropout=False`` every
    dropout probability (the layer's ``dropout_fields``) is 0."""
    if not dropout:
        layer = layer.without_dropout()
    changes: dict[str, Any] = {}
    for f in fields(layer):  # type: ignore[arg-type]
        v = getattr(layer, f.name)
        if isinstance(v, sympy.Basic) and v.free_symbols:
            changes[f.name] = substitute(v, dict(values))
    return replace(layer, **changes) if changes else layer  # type: ignore[type-var]


class _Seq(nn.Module):
    def __init__(self, items: list[nn.Module]) -> None:
        super().__init__()
        self.items = nn.ModuleList(items)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.items:
            x = m(x)
        return x


class _Repeat(nn.Module):
    def __init__(self, copies: list[nn.Module]) -> None:
        super().__init__()
        self.copies = nn.ModuleList(copies)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.copies:
            x = m(x)
        return x


class _Parts(nn.Module):
    """The model body of a model of parts: ``forward(inputs)`` with one input per part."""

    def __init__(self, items: list[tuple[str | None, nn.Module]], streams: dict[str, Any]):
        super().__init__()
        self.names = [name for name, _ in items]
        self.items = nn.ModuleList([m for _, m in items])
        self.streams = streams  # part name -> its output, for the layers that read it

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        parts = iter(inputs)
        x: torch.Tensor | None = None
        try:
            for name, m in zip(self.names, self.items, strict=True):
                if name is None:
                    assert x is not None  # the graph puts a part first
                    x = m(x)
                    continue
                x = m(next(parts))
                self.streams[name] = x
            assert x is not None
            return x
        finally:
            self.streams.clear()  # no reference kept past the forward


class _ReadsStream(nn.Module):
    """A layer that reads another part's output besides its input (``forward(x, memory)``)."""

    def __init__(self, layer: nn.Module, part: str, streams: dict[str, Any]) -> None:
        super().__init__()
        self.layer = layer
        self.part = part
        self.streams = streams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layer(x, self.streams[self.part])
        return out


class _Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Parallel(nn.Module):
    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branches[0](x)
        for b in self.branches[1:]:
            out = out + b(x)
        return out


@dataclass
class BuiltModel:
    """The module and, per layer path, its instances (one per repeat copy)."""

    module: nn.Module
    instances: dict[str, list[nn.Module]]
    graph: g.LayerGraph


def build(
    graph: g.LayerGraph,
    values: Mapping[sympy.Symbol, sympy.Expr],
    attention: Attention = "sdpa",
    dropout: bool = True,
) -> BuiltModel:
    """Build the network at ``values`` (every size must have a number).

    ``attention`` is the implementation of attention layers that do not name
    their own ``impl`` (the ActPolicy default; ``flash`` runs as sdpa).
    ``dropout=False`` builds every dropout with p = 0 (ActPolicy.dropout).

    Raises NotImplementedError for a kind without a PyTorch equivalent.
    """
    ev = int_evaluator(values)
    policy = ActPolicy(attention=attention, dropout=dropout)
    instances: dict[str, list[nn.Module]] = {}
    streams: dict[str, Any] = {}
    #: the parts built so far and their output shapes (for the layers that read one)
    built_parts: list[tuple[str, g.Shape]] = []

    def group(node: g.GroupNode) -> nn.Module:
        if node.kind == "model" and graph.parts:
            items: list[tuple[str | None, nn.Module]] = []
            for c in node.body:
                if isinstance(c, g.GroupNode) and c.kind == "part":
                    items.append((c.name, _Seq([child(x) for x in c.body])))
                    built_parts.append((c.name, c.out_shape))
                else:
                    items.append((None, child(c)))
            return _Parts(items, streams)
        if node.kind == "repeat":
            count = ev(node.count)
            if node.shared:  # one body run count times (parameters() lists it once)
                return _Repeat([_Seq([child(c) for c in node.body])] * count)
            return _Repeat([_Seq([child(c) for c in node.body]) for _ in range(count)])
        if node.kind == "residual":
            return _Residual(_Seq([child(c) for c in node.body]))
        if node.kind == "parallel":
            return _Parallel([group(b) for b in node.body])  # type: ignore[arg-type]
        return _Seq([child(c) for c in node.body])

    def child(node: g.Node) -> nn.Module:
        if isinstance(node, g.GroupNode):
            return group(node)
        module = _concrete(node.layer.with_policy(policy), values, dropout).to_torch(ev)
        if node.tie is not None:
            target = instances[node.tie][0]
            module.weight = target.weight
        instances.setdefault(node.path, []).append(module)
        memory = node.layer.reads_stream()
        if memory is not None and graph.parts:
            part = next((n for n, shape in reversed(built_parts) if shape == memory), None)
            if part is None:
                raise SemanticError(
                    f"cannot build the network: {node.path} reads a stream of shape "
                    f"{list(memory)} that no earlier part gives"
                )
            return _ReadsStream(module, part, streams)
        return module

    return BuiltModel(group(graph.root), instances, graph)


def make_inputs(
    graph: g.LayerGraph,
    values: Mapping[sympy.Symbol, sympy.Expr],
    dtype: torch.dtype,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[Any, torch.Tensor | None]:
    """A random input of the model's input shape: token ids when the first layer
    reads them (``Layer.token_vocab``), else values in ``dtype``; for a model of parts, a
    tuple of one such input per part.  Also the labels for a cross-entropy on the output's
    last dimension (a separate tensor from the input)."""
    ev = int_evaluator(values)
    out_shape = [ev(s) for s in graph.root.out_shape]
    gen = torch.Generator().manual_seed(seed)
    xs = []
    for group in graph.input_groups():
        shape = [ev(s) for s in group.in_shape]
        first = group.first_layer()
        vocab = first.layer.token_vocab() if first is not None else None
        if vocab is not None:
            xs.append(torch.randint(0, ev(vocab), shape, generator=gen).to(device))
        else:
            xs.append(torch.randn(shape, generator=gen).to(device=device, dtype=dtype))
    x: Any = tuple(xs) if graph.parts else xs[0]
    labels = (
        torch.randint(0, out_shape[-1], out_shape[:-1], generator=gen).to(device)
        if out_shape
        else None
    )
    return x, labels
