"""Where each layer sits: its multiplicity, its innermost repeat, and its pipeline stage.

Pipeline parallelism (Narayanan et al. 2021, 1F1B) splits the repeated layers
evenly over the stages; the layers before the first repeat (embeddings) sit on
the first stage, those after it (final norm, head, loss) on the last.  An
amount is kept split by part (:class:`Staged`) and reduced to the busiest
stage's share at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from symmem.graph import GroupNode, LayerGraph, LayerNode
from symmem.parallel import Parallel

#: the parts of a model for pipeline placement
STAGES = ("pre", "repeat", "post")


@dataclass(frozen=True)
class Place:
    """A layer node with where it sits: its multiplicity, its innermost repeat, its pipeline part."""

    node: LayerNode
    mult: sympy.Expr
    repeat: str | None
    #: "pre" (before the first repeat: first pipeline stage), "repeat" (split over stages), "post"
    stage: str


@dataclass(frozen=True)
class Repeat:
    group: GroupNode
    #: iterations in the whole model (enclosing repeat counts times this one's)
    iterations: sympy.Expr
    outer: sympy.Expr
    last_layer: str | None
    #: the first layer of the body (depth first): the one that reads the iteration's input
    first_layer: str | None = None


def _first_layer(g: GroupNode) -> str | None:
    for child in g.body:
        if isinstance(child, LayerNode):
            return child.path
        found = _first_layer(child)
        if found is not None:
            return found
    return None


def places(graph: LayerGraph) -> tuple[list[Place], dict[str, Repeat]]:
    """Every layer in execution order with its place, and every repeat group by path."""
    out: list[Place] = []
    repeats: dict[str, Repeat] = {}
    seen_repeat = False

    def walk(g: GroupNode, mult: sympy.Expr, repeat: str | None, inside: bool) -> None:
        nonlocal seen_repeat
        if g.kind == "repeat":
            seen_repeat = True
            last = g.body[-1].path if g.body and isinstance(g.body[-1], LayerNode) else None
            repeats[g.path] = Repeat(g, mult * g.count, mult, last, _first_layer(g))
            mult, repeat, inside = mult * g.count, g.path, True
        for child in g.body:
            if isinstance(child, LayerNode):
                stage = "repeat" if inside else ("post" if seen_repeat else "pre")
                out.append(Place(child, mult, repeat, stage))
            else:
                walk(child, mult, repeat, inside)

    walk(graph.root, sympy.Integer(1), None, False)
    return out, repeats


def output_head(places: Sequence[Place]) -> str | None:
    """The model's last layer when it can be an output head and sits outside any repeat."""
    if places and places[-1].node.layer.can_be_output_head() and places[-1].stage != "repeat":
        return places[-1].node.path
    return None


class Sum:
    """Terms collected with ``+=`` and added once (repeated sympy ``+`` re-sorts every time)."""

    __slots__ = ("terms",)

    def __init__(self) -> None:
        self.terms: list[sympy.Expr] = []

    def __iadd__(self, term: sympy.Expr) -> Sum:
        self.terms.append(term)
        return self

    def value(self) -> sympy.Expr:
        return sympy.Add(*self.terms)


class Staged:
    """An amount split by pipeline stage: before the first repeat, the repeats, after."""

    def __init__(self) -> None:
        self.parts: dict[str, Sum] = {k: Sum() for k in STAGES}

    def add(self, stage: str, amount: sympy.Expr) -> None:
        self.parts[stage] += amount

    def per_gpu(self, par: Parallel, first_factor: sympy.Expr | int = 1) -> sympy.Expr:
        """The most loaded pipeline stage's share.

        pp = 1: everything.  pp > 1: the repeats split evenly over the stages
        (L/pp layers each), the layers before them on the first stage (times
        ``first_factor``: micro-batches in flight for activations), those after
        on the last; the larger of the first and the last stage.
        """
        pre, rep, post = (self.parts[k].value() for k in STAGES)
        pp = sympy.sympify(par.pp)
        if pp == 1:
            return pre + rep + post
        first = first_factor * (pre + rep / pp)
        last = rep / pp + post
        return sympy.Max(first, last)
