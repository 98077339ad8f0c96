"""A :class:`~symmem.graph.LayerGraph` as a real ``torch.nn.Module`` (extra ``validate``).

Each layer becomes its kind's ``to_torch(ev)``; a ``repeat`` becomes ``count``
real, independent copies (the check runs at small sizes, so unrolling is
affordable and the measured memory is that of the real network), a ``shared``
repeat one copy run ``count`` times; a
``residual`` computes ``x + f(x)``; a ``parallel`` sums its branches (an empty
branch is the identity); a layer with ``tie = other`` gets the very
``Parameter`` object of ``other`` (so PyTorch counts it once, as
``model.parameters()`` does for Hugging Face's tied LM heads).
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

    def group(node: g.GroupNode) -> nn.Module:
        if node.kind == "part":
            raise NotImplementedError("a model of several parts (one input each)")
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
        return module

    return BuiltModel(group(graph.root), instances, graph)


def make_inputs(
    graph: g.LayerGraph,
    values: Mapping[sympy.Symbol, sympy.Expr],
    dtype: torch.dtype,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A random input of the model's input shape: token ids when the first layer
    reads them (``Layer.token_vocab``), else values in ``dtype``.  Also the labels for a
    cross-entropy on the output's last dimension (a separate tensor from the input)."""
    ev = int_evaluator(values)
    shape = [ev(s) for s in graph.input_shape]
    out_shape = [ev(s) for s in graph.root.out_shape]
    gen = torch.Generator().manual_seed(seed)
    first = next((node for node, _ in graph.walk()), None)
    vocab = first.layer.token_vocab() if first is not None else None
    if vocab is not None:
        x = torch.randint(0, ev(vocab), shape, generator=gen).to(device)
    else:
        x = torch.randn(shape, generator=gen).to(device=device, dtype=dtype)
    labels = (
        torch.randint(0, out_shape[-1], out_shape[:-1], generator=gen).to(device)
        if out_shape
        else None
    )
    return x, labels
