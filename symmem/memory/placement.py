"""Where each layer sits: its multiplicity, its innermost repeat, and its pipeline stage.

Pipeline parallelism (Narayanan et al. 2021, 1F1B) splits the repeated layers
evenly over the stages; the layers before the first repeat (embeddings) sit on
the first stage, those after it (final norm, head, loss) on the last.  An
amount is kept split by part (:class:`Staged`) and reduced to the busiest
stage's share at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy

from symmem.constraints import Constraint, divides
from symmem.errors import OptionError
from symmem.graph import GroupNode, LayerGraph, LayerNode
from symmem.layers.base import ParamTensor
from symmem.records import record
from symmem.values import substitute

#: the parts of a model for pipeline placement
STAGES = ("pre", "repeat", "post")


@record
class Place:
    """A layer node with where it sits: its multiplicity, its innermost repeat, its pipeline
    part."""

    node: LayerNode
    mult: sympy.Expr
    repeat: str | None
    #: "pre" (before the first repeat: first pipeline stage), "repeat" (split over stages), "post"
    stage: str
    #: how many sets of weights: ``mult`` with a ``shared`` repeat counted once
    weight_mult: sympy.Expr = sympy.Integer(1)


@record
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

    def walk(
        g: GroupNode, mult: sympy.Expr, wmult: sympy.Expr, repeat: str | None, inside: bool
    ) -> None:
        nonlocal seen_repeat
        if g.kind == "repeat":
            seen_repeat = True
            last = g.body[-1].path if g.body and isinstance(g.body[-1], LayerNode) else None
            repeats[g.path] = Repeat(g, mult * g.count, mult, last, _first_layer(g))
            mult, repeat, inside = mult * g.count, g.path, True
            wmult = wmult * g.weight_count
        for child in g.body:
            if isinstance(child, LayerNode):
                stage = "repeat" if inside else ("post" if seen_repeat else "pre")
                out.append(Place(child, mult, repeat, stage, wmult))
            else:
                walk(child, mult, wmult, repeat, inside)

    walk(graph.root, sympy.Integer(1), sympy.Integer(1), None, False)
    return out, repeats


def output_head(places: Sequence[Place]) -> str | None:
    """The model's last layer when it can be an output head and sits outside any repeat."""
    if places and places[-1].node.layer.can_be_output_head and places[-1].stage != "repeat":
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
    """An amount split by pipeline stage: before the first repeat, the repeats (each repeat's
    share kept apart too, for an uneven split), after."""

    def __init__(self) -> None:
        self.parts: dict[str, Sum] = {k: Sum() for k in STAGES}
        #: the "repeat" part by the innermost repeat its layer sits in
        self.by_repeat: dict[str | None, Sum] = {}

    def add(self, stage: str, amount: sympy.Expr, repeat: str | None = None) -> None:
        self.parts[stage] += amount
        if stage == "repeat":
            self.by_repeat.setdefault(repeat, Sum()).__iadd__(amount)

    def scale_repeat(self, factor: sympy.Expr) -> None:
        """Every repeated layer's amount times ``factor``."""
        self.parts["repeat"] = _scaled(self.parts["repeat"], factor)
        self.by_repeat = {k: _scaled(v, factor) for k, v in self.by_repeat.items()}

    def per_gpu(
        self,
        pp_on: bool,
        pp: sympy.Expr,
        first_factor: sympy.Expr | int = 1,
        split: StageSplit | None = None,
        factors: Sequence[sympy.Expr] | None = None,
    ) -> sympy.Expr:
        """The most loaded pipeline stage's share (``pp``: the stages, when ``pp_on``).

        One stage: everything.  pp > 1: the repeats split evenly over the stages
        (L/pp layers each), the layers before them on the first stage (times
        ``first_factor``: micro-batches in flight for activations), those after
        on the last; the larger of the first and the last stage.  With an uneven
        ``split``: each stage's own layers (times ``factors[s]``), the largest.
        """
        pre, rep, post = (self.parts[k].value() for k in STAGES)
        if not pp_on:
            return pre + rep + post
        if split is not None:
            terms = split.stage_terms(self, pre, post)
            if factors is not None:
                terms = [f * t for f, t in zip(factors, terms, strict=True)]
            return largest(*terms)
        first = first_factor * (pre + rep / pp)
        last = rep / pp + post
        return largest(first, last)

    def paired(self, split: StageSplit) -> sympy.Expr:
        """DualPipe: rank d holds stage d and stage pp - 1 - d (DeepSeek-V3 report, Section
        3.2.1: two copies of the parameters over the pipeline); the busiest rank's pair."""
        pre, post = self.parts["pre"].value(), self.parts["post"].value()
        terms = split.stage_terms(self, pre, post)
        n = len(terms)
        return largest(*[terms[d] + terms[n - 1 - d] for d in range((n + 1) // 2)])


def _scaled(s: Sum, factor: sympy.Expr) -> Sum:
    out = Sum()
    out += s.value() * factor
    return out


@record
class StageSplit:
    """Which iterations of each outermost repeat each pipeline stage holds: the repeats' layers
    in model order, cut into consecutive runs of ``sizes[s]`` layers (Megatron-LM builds stage
    s's layers from its offset in the layer list: ``get_transformer_layer_offset``)."""

    #: layers of each stage
    sizes: tuple[int, ...]
    #: per stage, (outermost repeat path, iterations of it on that stage)
    counts: tuple[tuple[tuple[str, int], ...], ...]
    #: each outermost repeat's iterations at the model's values
    iterations: tuple[tuple[str, int], ...]
    #: the symbols of those iteration counts at their values: the split is decided there, so
    #: the stage formulas hold them fixed (a formula in n_layers would be wrong at any other
    #: n_layers, and its derivative in n_layers wrong everywhere)
    pinned: tuple[tuple[sympy.Symbol, int], ...] = ()

    def stage_terms(self, staged: Staged, pre: sympy.Expr, post: sympy.Expr) -> list[sympy.Expr]:
        """Each stage's amount: its share of each repeat (n iterations of L: n / L of the
        repeat's amount), the layers before the repeats on the first, after them on the last."""
        its = dict(self.iterations)
        outer: dict[str, Sum] = {path: Sum() for path in its}
        for inner, amount in staged.by_repeat.items():
            owner = _outermost(inner, its)
            outer[owner] += amount.value()
        totals = {path: s.value() for path, s in outer.items()}
        terms = []
        last = len(self.counts) - 1
        for s, counts in enumerate(self.counts):
            pinned = dict(self.pinned)
            t = sympy.Add(
                *[sympy.Rational(n, its[p]) * substitute(totals[p], pinned) for p, n in counts if n]
            )
            if s == 0:
                t += pre
            if s == last:
                t += post
            terms.append(t)
        return terms


def _outermost(inner: str | None, outers: Mapping[str, Any]) -> str:
    if inner is None:
        raise ValueError("a repeated amount without its repeat")  # pragma: no cover
    for path in outers:
        if inner == path or inner.startswith(path + "."):
            return path
    raise ValueError(f"repeat {inner} inside no outermost repeat")  # pragma: no cover


def outermost_repeats(repeats: Mapping[str, Repeat]) -> list[str]:
    """The repeats no other repeat encloses, in model order."""
    return [
        path
        for path in repeats
        if not any(path.startswith(other + ".") for other in repeats if other != path)
    ]


def stage_split(
    repeats: Mapping[str, Repeat],
    pp: sympy.Expr,
    first: int | None,
    last: int | None,
    exact: Any,
) -> StageSplit | None:
    """The layers of each stage when the first or the last stage is given its own count; None
    otherwise (the even L / pp formulas, pp dividing each outermost repeat).  ``exact``: an
    expression's value at the model's values (None when it has none).

    Megatron-LM (megatron/core/transformer/transformer_block.py, ``get_num_layers_to_build``):
    with ``--decoder-first-pipeline-num-layers`` / ``--decoder-last-pipeline-num-layers`` those
    stages hold that many layers and the stages between split the rest evenly (it asserts they
    divide it); without them every stage holds num_layers / pp (asserted whole).  The layers
    are the repeats' iterations in model order; a stage's layers are consecutive."""
    if first is None and last is None:
        # without a stage's own count, pp divides each repeat (stage_constraints): the even
        # L / pp formulas, which stay valid for every pp (solve, sweep, the page); Megatron's
        # even split of a total that pp divides is --pp-first-layers L / pp
        return None
    outers = outermost_repeats(repeats)
    stages = exact(pp)
    if not isinstance(stages, int):
        if first is None and last is None:
            return None
        raise OptionError("pp_first_layers / pp_last_layers need a numeric pp")
    its: dict[str, int] = {}
    for path in outers:
        v = exact(repeats[path].iterations)
        if not isinstance(v, int):
            if first is None and last is None:
                return None  # the divisibility constraints decide (kept for solve / sweep)
            raise OptionError(
                f"an uneven pipeline split needs the iterations of repeat '{path}' as a number"
            )
        its[path] = v
    if first is None and last is None and all(n % stages == 0 for n in its.values()):
        return None
    total = sum(its.values())
    left, between = total, stages
    for given in (first, last):
        if given is not None:
            left -= given
            between -= 1
    what = f"the {total} repeated layers ({' + '.join(str(n) for n in its.values())})"
    if between < 0 or left < 0:
        raise OptionError(
            f"pp_first_layers / pp_last_layers give more layers or stages than {what} over "
            f"pp = {stages} stages"
        )
    if between == 0 and left != 0:
        raise OptionError(
            f"pp_first_layers / pp_last_layers leave {left} of {what} on no stage (pp = {stages})"
        )
    if between and left % between:
        flags = (
            ""
            if first is not None or last is not None
            else ("; give --pp-first-layers / --pp-last-layers (Megatron-LM's uneven split)")
        )
        raise OptionError(
            f"pp = {stages}: the {between} even stages cannot split the {left} remaining of "
            f"{what} evenly (Megatron-LM requires it){flags}"
        )
    per = left // between if between else 0
    sizes = [per] * stages
    if first is not None:
        sizes[0] = first
    if last is not None:
        sizes[-1] = last
    layers = [path for path in outers for _ in range(its[path])]
    counts = []
    start = 0
    for size in sizes:
        run = layers[start : start + size]
        start += size
        counts.append(tuple((path, run.count(path)) for path in outers if path in run))
    pinned = {
        sym: exact(sym)
        for path in outers
        for sym in sorted(repeats[path].iterations.free_symbols, key=str)
        if isinstance(exact(sym), int)
    }
    return StageSplit(
        tuple(sizes),
        tuple(counts),
        tuple(its.items()),
        tuple((sym, sympy.Integer(v)) for sym, v in pinned.items()),
    )


def largest(*terms: sympy.Expr) -> sympy.Expr:
    """The largest of ``terms``, as ``Max`` of those no other term provably bounds.

    Memory terms are sums of products of sizes, which are positive integers; a term
    ``b`` is dropped when some other term ``a`` provably satisfies ``a >= b`` for every
    value (:func:`bounds`).  sympy's own ``Max`` proves the same by asking assumptions
    of every pair, which takes seconds on a long inference stack; anything this cannot
    decide is kept, so the value is always the same.
    """
    unique = list(dict.fromkeys(sympy.sympify(t) for t in terms))
    # a >= b everywhere needs a >= b at a few points: a cheap filter before the proof
    points = _points(unique)
    polys = [_poly(t) for t in unique]
    if all(q is not None for q in polys):  # the same exact numbers, without sympy
        samples = [tuple(_at(q, p) for p in points) for q in polys if q is not None]
    else:
        samples = [tuple(substitute(t, p) for p in points) for t in unique]
    kept: list[sympy.Expr] = []
    for i, b in enumerate(unique):
        # drop b if another term bounds it; of two equal terms keep the first
        if any(
            j != i
            and all(x >= y for x, y in zip(samples[j], samples[i], strict=True))
            and bounds(a, b)
            and (j < i or not bounds(b, a))
            for j, a in enumerate(unique)
        ):
            continue
        kept.append(b)
    return kept[0] if len(kept) == 1 else sympy.Max(*kept, evaluate=False)


#: points where every symbol takes the same value, and two where they differ (by name order,
#: rising and falling): a term's values there filter what can bound it before any proof
_SAMPLE_POINTS = (1, 3, 1000)
_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def _points(terms: Sequence[sympy.Expr]) -> list[dict[sympy.Expr, sympy.Expr]]:
    """The sample points for every symbol of ``terms`` (one assignment shared by all terms)."""
    symbols = sorted(set().union(*(t.free_symbols for t in terms)), key=lambda s: s.name)
    points = [dict.fromkeys(symbols, sympy.Integer(v)) for v in _SAMPLE_POINTS]
    spread = [sympy.Integer(_PRIMES[i % len(_PRIMES)] ** 2) for i in range(len(symbols))]
    points.append(dict(zip(symbols, spread, strict=True)))
    points.append(dict(zip(symbols, reversed(spread), strict=True)))
    return points


@lru_cache(maxsize=4096)
def bounds(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Is ``a >= b`` for every value of their symbols?  A sufficient test: ``a - b``, its
    positive denominator (a product of symbols) cleared, has no negative coefficient once
    every positive-integer symbol is written as ``1 + y`` with ``y >= 0``."""
    fast = _bounds_polynomial(a, b)
    if fast is not None:
        return fast
    diff = sympy.expand(a - b)
    if diff.is_number:
        return bool(diff >= 0)
    if diff.has(sympy.Max, sympy.Min, sympy.floor, sympy.ceiling, sympy.Piecewise):
        return False
    if not all(s.is_positive for s in diff.free_symbols):
        return False
    if _no_negative_coefficient(diff) or _covered(diff):
        return True
    denominators: dict[sympy.Expr, sympy.Expr] = {}
    for term in sympy.Add.make_args(diff):
        for base, exp in term.as_powers_dict().items():
            if exp.is_number and exp < 0:
                if not base.is_Symbol:
                    return False
                denominators[base] = sympy.Max(denominators.get(base, 0), -exp)
    num = sympy.expand(diff * sympy.Mul(*[s**e for s, e in denominators.items()]))
    shifted = sympy.expand(num.xreplace({s: s + 1 for s in num.free_symbols if s.is_integer}))
    return _no_negative_coefficient(shifted)


#: a (Laurent) polynomial as {monomial: exact coefficient}; a monomial is a frozenset of
#: (symbol, nonzero whole exponent) pairs (the empty one: the constant term)
Poly = dict[frozenset[tuple[sympy.Symbol, int]], int | Fraction]


@lru_cache(maxsize=4096)
def _poly(expr: sympy.Expr) -> Poly | None:
    """``expr`` expanded into :data:`Poly` form, or None when it is not a sum of rational
    multiples of products of symbols to whole powers (a ``Max``, a sum in a denominator...)."""
    out: Poly = {}
    for term in sympy.Add.make_args(sympy.expand(expr)):
        coeff, rest = term.as_coeff_Mul()
        if not coeff.is_Rational:
            return None
        powers: list[tuple[sympy.Symbol, int]] = []
        if rest != 1:
            for base, exp in rest.as_powers_dict().items():
                if not (base.is_Symbol and exp.is_Integer and exp != 0):
                    return None
                powers.append((base, int(exp)))
        key = frozenset(powers)
        value = out.get(key, 0) + Fraction(int(coeff.p), int(coeff.q))
        if value:
            out[key] = value
        else:
            out.pop(key, None)
    return {k: (int(v) if v.denominator == 1 else v) for k, v in out.items()}


def _at(poly: Poly, point: Mapping[sympy.Expr, sympy.Expr]) -> int | Fraction:
    """``poly``'s exact value at ``point`` (every symbol of it a whole number there)."""
    total: int | Fraction = 0
    for monomial, coeff in poly.items():
        value = coeff
        for symbol, exp in monomial:
            x = int(point[symbol])
            value = value * x**exp if exp > 0 else Fraction(value) / x**-exp
        total += value
    return total


def _bounds_polynomial(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    """:func:`bounds` for two polynomials (the memory terms), on coefficient dictionaries
    instead of sympy expansions: the same answer (None: not polynomials, ask sympy).

    ``a - b`` with no negative coefficient; else, every integer symbol written ``1 + y``,
    no negative coefficient (which :func:`_covered` implies for a polynomial: a monomial
    minus one that divides it has no negative coefficient once shifted)."""
    pa, pb = _poly(a), _poly(b)
    if pa is None or pb is None:
        return None
    diff = dict(pa)
    for monomial, coeff in pb.items():
        value = diff.get(monomial, 0) - coeff
        if value:
            diff[monomial] = value
        else:
            diff.pop(monomial, None)
    if all(not m for m in diff):  # a number
        return sum(diff.values(), start=0) >= 0
    if not all(s.is_positive for m in diff for s, _ in m):
        return False
    if all(c >= 0 for c in diff.values()):
        return True
    # the positive denominator (a product of symbols) cleared, as bounds() does
    clear: dict[sympy.Symbol, int] = {}
    for monomial in diff:
        for symbol, exp in monomial:
            if exp < 0:
                clear[symbol] = max(clear.get(symbol, 0), -exp)
    if clear:
        cleared: Poly = {}
        for monomial, coeff in diff.items():
            exps = dict(monomial)
            for symbol, e in clear.items():
                exps[symbol] = exps.get(symbol, 0) + e
            cleared[frozenset((x, e) for x, e in exps.items() if e)] = coeff
        diff = cleared
    shifted: dict[frozenset[tuple[sympy.Symbol, int]], int | Fraction] = {}
    for monomial, coeff in diff.items():
        terms: dict[frozenset[tuple[sympy.Symbol, int]], int | Fraction] = {frozenset(): coeff}
        for symbol, exp in monomial:
            step: dict[frozenset[tuple[sympy.Symbol, int]], int | Fraction] = {}
            shift = bool(symbol.is_integer)
            for m, c in terms.items():
                for k in range(exp + 1) if shift else (exp,):
                    key = m | {(symbol, k)} if k else m
                    step[key] = step.get(key, 0) + c * (math.comb(exp, k) if shift else 1)
            terms = step
        for m, c in terms.items():
            shifted[m] = shifted.get(m, 0) + c
    return all(c >= 0 for c in shifted.values())


def _covered(poly: sympy.Expr) -> bool:
    """Each negative term ``-c m`` paid for by positive terms ``c' m'`` whose monomial is a
    multiple of ``m`` (so ``m' >= m`` when every symbol is >= 1), greedily: sufficient for
    ``poly >= 0`` at every positive-integer point, and linear in the number of terms."""
    positive: list[list[Any]] = []
    negative: list[tuple[sympy.Expr, dict[sympy.Expr, sympy.Expr]]] = []
    for term in sympy.Add.make_args(poly):
        coeff, rest = term.as_coeff_Mul()
        if not coeff.is_number:
            return False
        powers = rest.as_powers_dict() if rest != 1 else {}
        if not all(
            b.is_Symbol and b.is_integer and b.is_positive and e.is_number
            for b, e in powers.items()
        ):
            return False
        if coeff >= 0:
            positive.append([coeff, powers])
        else:
            negative.append((-coeff, powers))
    for need, powers in negative:
        for entry in positive:
            if need == 0:
                break
            have, other = entry
            if (
                have > 0
                and all(other.get(b, 0) >= e for b, e in powers.items())
                and all(e >= 0 or powers.get(b, 0) <= e for b, e in other.items())
            ):
                take = min(have, need)
                entry[0] = have - take
                need -= take
        if need > 0:
            return False
    return True


def _no_negative_coefficient(poly: sympy.Expr) -> bool:
    """Every term a non-negative number times a product of positive symbols."""
    for term in sympy.Add.make_args(poly):
        coeff, rest = term.as_coeff_Mul()
        if not (coeff.is_number and coeff >= 0) or not rest.is_positive:
            return False
    return True


def at_values(expr: sympy.Expr, values: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """``expr`` with ``values`` put in (to a fixpoint: values may refer to symbols that have
    values), every ``Max`` / ``Min`` rebuilt unevaluated around its arguments' expansions.

    ``xreplace`` rebuilds a ``Max`` by evaluating it, which asks sympy's assumptions of every
    pair of arguments (a second and more on a large model, for a result whose value is the
    same); the compiled forms take the largest at evaluation time anyway."""

    def walk(e: sympy.Expr) -> sympy.Expr:
        if not e.has(sympy.Max, sympy.Min):
            out = e
            for _ in range(8):
                new = substitute(out, values)
                if new == out:
                    break
                out = new
            return out
        args = [walk(a) for a in e.args]
        if isinstance(e, sympy.Max | sympy.Min):
            return type(e)(*[sympy.expand(a) for a in args], evaluate=False)
        return e.func(*args)

    return walk(expr)


# ---------------------------------------------------------------- what placement requires


def stage_constraints(repeats: dict[str, Repeat], pp: sympy.Expr) -> list[Constraint]:
    """``pp`` divides the iterations of each outermost repeat: the stages then hold equal
    shares (L / pp layers each), as the formulas assume.  An uneven split is refused, as
    ``--tp`` that does not divide the heads is: Megatron-LM would put ceil(L / pp) layers on
    the busiest stage (and by default refuses such a split itself)."""
    out = []
    for path, r in repeats.items():
        if any(path.startswith(other + ".") for other in repeats if other != path):
            continue  # nested: it moves with the repeat around it

        def message(iterations: Any, stages: Any, path: str = path) -> str:
            busiest = -(-int(iterations) // int(stages)) if _whole(iterations, stages) else "?"
            return (
                f"pp = {stages} does not divide the {iterations} iterations of repeat "
                f"'{path}': the busiest pipeline stage would hold {busiest} of them, not "
                f"{iterations}/{stages}; give a pp that divides {iterations}, or numbers for "
                "the repeats' iterations and --pp-first-layers / --pp-last-layers"
            )

        out.append(divides(r.iterations, pp, message))
    return out


def group_constraint(t: ParamTensor, group_size: int) -> Constraint:
    """Quantization groups tile a matrix: ``group_size`` divides each copy's weights (AutoGPTQ
    requires ``in_features % group_size == 0``; a group larger than the matrix means nothing)."""
    per_copy = t.numel / t.copies

    def message(weights: Any, size: Any) -> str:
        return (
            f"group_size = {size} does not divide the {weights} weights of matrix {t.name} "
            "(quantization groups must tile each matrix)"
        )

    return divides(per_copy, sympy.Integer(group_size), message)


def _whole(*xs: Any) -> bool:
    return all(isinstance(x, int) or (isinstance(x, float) and x.is_integer()) for x in xs)
