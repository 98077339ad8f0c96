"""The largest integer value of a symbol whose memory fits a budget, exactly.

``solve(q, budget, for_="batch")`` returns the largest integer ``v >= 1`` with
``q(v) <= budget < q(v + 1)``, both sides evaluated with exact integers
(sympy ``Integer``/``Rational``, Python ``int``/``Fraction``), never floats.

How (reported in :attr:`SolveResult.method`):

* ``closed-form``: the expression, with every other symbol at its value, is a
  polynomial in the symbol.  Degree 1 and 2 are solved with exact integer
  arithmetic (``math.isqrt``); higher degrees with ``sympy.solve`` over a
  positive *real* twin of the symbol (sympy drops fractional roots of
  ``integer=True`` symbols), then floored.  The root is then verified, and
  moved by a step if rounding put it off by one, by exact evaluation.
* ``bisection``: anything else (``floor``/``ceiling`` in shapes, ``Min``/``Max``):
  exponential search for an upper bracket, then integer bisection on the exact
  expression.  Memory is assumed non-decreasing in the symbol (it is, for every
  size symbol); the final check ``q(v) <= budget < q(v+1)`` holds regardless.
* ``constant``: memory does not depend on the symbol: every value fits or none does.

Solved forms are cached per (expression, symbol), so repeated solves of one
quantity (a frontier, a budget scan) cost microseconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import replace
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy

from symmem.constraints import Checker, Constraint, compile_exact, divisors
from symmem.errors import OptionError, SemanticError, suggest
from symmem.limits import MAX_FRONTIER, check_int
from symmem.quantity import Quantity, as_quantity
from symmem.records import record
from symmem.symbols import real_twin
from symmem.units import parse_budget
from symmem.values import as_mapping, as_name, as_value, as_whole, powers_are_small, substitute

#: exponential search gives up (and calls the quantity unbounded) past this value
_SEARCH_LIMIT = 2**128
#: values a solve steps through, below the largest that fits, for one the model accepts
MAX_STEPS = 1_000_000


@record
class SolveResult:
    """The answer of :func:`solve`; ``value`` is None when even ``lower`` does not fit."""

    symbol: str
    value: int | None
    #: exact bytes at ``value`` (at ``lower`` when nothing fits); a Fraction only if the memory is
    #: fractional
    bytes_at_value: int | Fraction
    #: exact bytes at ``value + 1``; None when every value fits
    bytes_at_next: int | Fraction | None
    budget_bytes: int
    method: str
    #: the smallest value the symbol may take (1 for sizes)
    lower: int = 1
    #: the largest value that fits, when the model refuses it (and ``value`` is the largest
    #: value that fits and that the model accepts, as ``--set`` would); else None
    largest_fitting: int | None = None
    #: why the model refuses ``largest_fitting`` (head_dim not whole, ...)
    refused: str | None = None
    #: a second budget (host memory per node, ``solve(..., host=, host_budget=)``): its bytes,
    #: the host quantity's bytes at ``value`` and at ``value + 1`` (None: every value fits it)
    host_budget_bytes: int | None = None
    host_bytes_at_value: int | Fraction | None = None
    host_bytes_at_next: int | Fraction | None = None
    #: which budget decides ``value``: "gpu" or "host" (None: one budget only)
    bound_by: str | None = None

    @property
    def fits(self) -> bool:
        return self.value is not None

    @property
    def unbounded(self) -> bool:
        """Memory does not grow with the symbol and fits: every value fits."""
        return self.value is not None and self.bytes_at_next is None

    @property
    def headroom(self) -> int | Fraction:
        """Budget left at ``value`` (negative: by how much ``lower`` is over)."""
        return self.budget_bytes - self.bytes_at_value

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""

        def num(x: int | Fraction | None) -> int | float | None:
            if x is None or isinstance(x, int):
                return x
            return int(x) if x.denominator == 1 else float(x)

        doc: dict[str, Any] = {
            "symbol": self.symbol,
            "value": self.value,
            "bytes_at_value": num(self.bytes_at_value),
            "bytes_at_next": num(self.bytes_at_next),
            "budget_bytes": self.budget_bytes,
            "method": self.method,
        }
        if self.unbounded:  # every value fits: value is the smallest, bytes_at_next is null
            doc["unbounded"] = True
        if self.largest_fitting is not None:
            doc["largest_fitting"] = self.largest_fitting
            doc["refused"] = self.refused
        if self.host_budget_bytes is not None:
            doc.update(
                host_budget_bytes=self.host_budget_bytes,
                host_bytes_at_value=num(self.host_bytes_at_value),
                host_bytes_at_next=num(self.host_bytes_at_next),
                bound_by=self.bound_by,
            )
        return doc


# ---------------------------------------------------------------- evaluation
def _to_exact(x: sympy.Expr) -> int | Fraction:
    x = sympy.sympify(x)
    if x.is_Integer:
        return int(x)
    if x.is_Rational:
        return Fraction(int(x.p), int(x.q))
    if x.is_number:
        # floor/ceiling of exact rationals evaluate exactly; anything else (sqrt...) is a bug in a
        # formula
        raise OptionError(f"the memory expression evaluates to a non-rational number ({x})")
    raise OptionError(f"free symbols remain in the expression: {sorted(map(str, x.free_symbols))}")


@record
class _Compiled:
    """A one-symbol expression ready for fast exact evaluation."""

    expr: sympy.Expr | None  # None: a frontier row, known by its coefficients
    sym: sympy.Symbol
    #: exact polynomial coefficients, highest degree first, or None
    coeffs: tuple[Fraction, ...] | None

    def __call__(self, v: int) -> int | Fraction:
        if self.coeffs is not None:
            acc: int | Fraction = 0
            for c in self.coeffs:  # Horner, exact
                acc = acc * v + c
            if isinstance(acc, Fraction) and acc.denominator == 1:
                return int(acc)
            return acc
        assert self.expr is not None  # an expression without coefficients has its formula
        fast = _plain_function(self.expr, self.sym)
        if fast is not None:
            try:
                (value,) = fast(v)
            except Exception:  # noqa: BLE001 - sympy's evaluation below says what is wrong
                pass
            else:
                if isinstance(value, int | Fraction):
                    return (
                        int(value)
                        if isinstance(value, Fraction) and value.denominator == 1
                        else value
                    )
        return _to_exact(substitute(self.expr, {self.sym: sympy.Integer(v)}))


#: the expression nodes a compiled evaluation computes exactly as sympy does (whole powers)
_PLAIN = (
    sympy.Add,
    sympy.Mul,
    sympy.Symbol,
    sympy.Rational,
    sympy.Max,
    sympy.Min,
    sympy.floor,
    sympy.ceiling,
)


@lru_cache(maxsize=256)
def _plain_function(expr: sympy.Expr, sym: sympy.Symbol) -> Callable[..., tuple[Any, ...]] | None:
    """``expr`` compiled to exact Python over ``sym`` (a bisection evaluates it tens of
    times: sympy's substitution re-evaluates every ``Max``, milliseconds a point), or None
    when it holds anything but sums, products, whole powers, Max/Min and floor/ceiling."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow):
            if not node.exp.is_Integer:
                return None
        elif not isinstance(node, _PLAIN):
            return None
    return compile_exact([expr], [sym], shared=False)


@lru_cache(maxsize=256)
def _compile(expr: sympy.Expr, sym: sympy.Symbol) -> _Compiled:
    coeffs: tuple[Fraction, ...] | None = None
    # a polynomial of degree 10^12 is not expanded into its coefficients (sympy's dense
    # representation would never finish): it is evaluated point by point instead
    if powers_are_small(expr) and not expr.has(
        sympy.floor, sympy.ceiling, sympy.Min, sympy.Max, sympy.Piecewise, sympy.Abs, sympy.Mod
    ):
        try:
            poly = sympy.Poly(expr, sym)
        except sympy.PolynomialError:
            poly = None
        if poly is not None and all(c.is_Rational for c in poly.all_coeffs()):
            coeffs = tuple(Fraction(int(c.p), int(c.q)) for c in poly.all_coeffs())
    return _Compiled(expr, sym, coeffs)


def _one_symbol(
    q: Quantity, name: str, fixed: Mapping[str, Any] | None = None
) -> tuple[sympy.Expr, sympy.Symbol]:
    """q's expression with every symbol but ``name`` at its value."""
    as_quantity(q)
    as_name(name, "for_", OptionError)
    if name not in q.symbols:
        hint = suggest(name, list(q.symbols))
        raise OptionError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
    sym = q.symbols[name]
    values = dict(q.values)
    values.pop(sym, None)
    for k, v in as_mapping(fixed, "fixed", OptionError).items():
        if k not in q.symbols:
            hint = suggest(k, list(q.symbols))
            raise OptionError(f"unknown symbol '{k}'" + (f": {hint}" if hint else ""))
        values[q.symbols[k]] = as_value(v, f"the value of '{k}'", OptionError)
    # values that depend on the symbol itself (d_ff = 4*d_model with d_model free) follow it
    expr = q.expr
    for _ in range(4):
        new = substitute(expr, values)
        if new == expr:
            break
        expr = new
    extra = expr.free_symbols - {sym}
    if extra:
        names = ", ".join(sorted(str(s) for s in extra))
        raise OptionError(
            f"cannot solve for '{name}': other symbols have no value ({names}); give them one "
            "with --set"
        )
    return expr, sym


def evaluator(
    q: Quantity, name: str, fixed: Mapping[str, Any] | None = None
) -> Callable[[int], int | Fraction]:
    """``f(v)``: q's exact value with ``name = v`` and every other symbol at its value."""
    expr, sym = _one_symbol(q, name, fixed)
    return _compile(expr, sym)


# ---------------------------------------------------------------- solving
def _floor_root_quadratic(a: Fraction, b: Fraction, c: Fraction) -> int | None:
    """floor of the larger real root of a x^2 + b x + c = 0 (a > 0), exactly; None if no real
    root."""
    # scale to integers
    den = math.lcm(a.denominator, b.denominator, c.denominator)
    A, B, C = int(a * den), int(b * den), int(c * den)
    disc = B * B - 4 * A * C
    if disc < 0:
        return None
    # x = (-B + sqrt(disc)) / (2A); floor with an integer square root, then fix below
    return (-B + math.isqrt(disc)) // (2 * A)


def _closed_form_guess(f: _Compiled, budget: int) -> tuple[int | None, str]:
    assert f.coeffs is not None
    coeffs = list(f.coeffs)
    while coeffs and coeffs[0] == 0:
        coeffs.pop(0)
    deg = len(coeffs) - 1
    if deg <= 0:
        return None, "constant"
    if deg == 1:
        a, b = coeffs
        return math.floor((budget - b) / a), "closed-form"
    if deg == 2:
        a, b, c = coeffs
        if a > 0:
            return _floor_root_quadratic(a, b, c - budget), "closed-form"
    # general polynomial: sympy over the positive real twin
    expr = f.expr
    if expr is None:  # a frontier row: the polynomial from its coefficients
        expr = sympy.Add(
            *[
                sympy.Rational(c.numerator, c.denominator) * f.sym**i
                for i, c in enumerate(reversed(coeffs))
            ]
        )
    return _sympy_root(expr, f.sym, budget), "closed-form"


@lru_cache(maxsize=256)
def _solved_form(expr: sympy.Expr, sym: sympy.Symbol) -> tuple[sympy.Expr, ...]:
    x = real_twin(sym)
    budget = sympy.Symbol("__budget", positive=True)
    try:
        return tuple(sympy.solve(sympy.Eq(expr.xreplace({sym: x}), budget), x))
    except (NotImplementedError, ValueError):  # pragma: no cover - sympy cannot
        return ()


def _sympy_root(expr: sympy.Expr, sym: sympy.Symbol, budget: int) -> int | None:
    roots = _solved_form(expr, sym)
    best: int | None = None
    b = sympy.Symbol("__budget", positive=True)
    for r in roots:
        val = sympy.N(substitute(r, {b: sympy.Integer(budget)}), 60)
        if val.is_real is False or abs(sympy.im(val)) > 1e-30:
            continue
        re = sympy.re(val)
        if re > 0:
            fl = int(sympy.floor(re))
            best = fl if best is None else max(best, fl)
    return best


def _bisect(f: Callable[[int], int | Fraction], budget: int, lo: int) -> int | None:
    """Largest v >= lo with f(v) <= budget (f non-decreasing); None when unbounded below the
    limit."""
    hi = max(lo * 2, lo + 1)
    while f(hi) <= budget:
        lo = hi
        hi *= 2
        if hi > _SEARCH_LIMIT:
            return None
    # f(lo) <= budget < f(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def _grows(f: _Compiled) -> bool:
    """Does the expression depend on its symbol at all?"""
    if f.coeffs is not None:
        return any(c != 0 for c in f.coeffs[:-1])
    return f.expr is not None and bool(f.expr.has(f.sym))


def solve(
    q: Quantity,
    budget: int | str,
    for_: str = "batch",
    *,
    lower: int = 1,
    fixed: Mapping[str, Any] | None = None,
    host: Quantity | None = None,
    host_budget: int | str | None = None,
) -> SolveResult:
    """The largest integer value of ``for_`` (>= ``lower``) with ``q <= budget``; exact.

    ``budget``: bytes, or a size string (``"24GB"``, ``"80GiB"``).  ``fixed``
    gives other symbols values for this solve only (a frontier uses it).  ``host`` and
    ``host_budget``: a second quantity and its budget (host memory per node,
    ``MemoryResult.host``): the value must fit both (:attr:`SolveResult.bound_by` says which
    one decides it).
    """
    budget_bytes = parse_budget(budget)
    if isinstance(lower, bool) or not isinstance(lower, int) or lower < 0:
        raise OptionError(f"lower: expected a whole number >= 0, got {lower!r}"[:200])
    if (host is None) != (host_budget is None):
        raise OptionError("host and host_budget go together: the host quantity and its budget")
    expr, sym = _one_symbol(q, for_, fixed)
    f = _compile(expr, sym)
    checker = _checker(q, sym, fixed)
    if checker.fixed_violation is not None:
        raise SemanticError(checker.fixed_violation)
    result = _solve(f, budget_bytes, for_, lower, checker)
    if host is None or host_budget is None:
        return result
    host_bytes = parse_budget(host_budget, what="host budget")
    hf = _compile(*_one_symbol(as_quantity(host), for_, fixed))
    return _both(result, f, _solve(hf, host_bytes, for_, lower, checker), hf)


def _both(
    gpu: SolveResult, f: _Compiled, host: SolveResult, hf: Callable[[int], int | Fraction]
) -> SolveResult:
    """The largest value that fits the GPU's budget (``gpu``) and the host's (``host``): the
    smaller of the two (each is the largest value its budget and the model accept; both
    quantities grow with the symbol, so whatever is below both fits both)."""

    def bound(r: SolveResult) -> float:
        return math.inf if r.unbounded else (r.value if r.value is not None else -math.inf)

    host_binds = bound(host) < bound(gpu)
    chosen = host if host_binds else gpu
    v = chosen.value
    base = replace(gpu, value=v, largest_fitting=chosen.largest_fitting, refused=chosen.refused)
    at = v if v is not None else host.lower
    if host_binds:
        base = replace(base, bytes_at_value=f(at), bytes_at_next=f(at + 1))
    return replace(
        base,
        host_budget_bytes=host.budget_bytes,
        host_bytes_at_value=hf(at),
        host_bytes_at_next=None if host.unbounded else hf(at + 1),
        bound_by="host" if host_binds else "gpu",
    )


def _checker(q: Quantity, sym: sympy.Symbol, fixed: Mapping[str, Any] | None) -> Checker:
    """Which values of ``sym`` the model accepts, the others at their (or ``fixed``) values."""
    values = {s: v for s, v in q.values.items() if s != sym}
    for k, v in as_mapping(fixed, "fixed", OptionError).items():
        values[q.symbols[k]] = as_value(v, f"the value of '{k}'", OptionError)
    return _cached_checker(q.constraints, tuple(values.items()), sym)


@lru_cache(maxsize=256)
def _cached_checker(
    constraints: tuple[Constraint, ...],
    values: tuple[tuple[sympy.Symbol, sympy.Expr], ...],
    sym: sympy.Symbol,
) -> Checker:
    return Checker(constraints, dict(values), [sym])


def _accepted_at_or_below(checker: Checker, v: int, lower: int, name: str) -> int | None:
    """The largest value in [lower, v] the model accepts (None: none)."""
    g = checker.divisor_of
    if g is not None and g <= 10**12:  # every accepted value divides g: try only those
        for w in reversed(divisors(g)):
            if lower <= w <= v and checker.accepts(w):
                return w
        return None
    w = v
    while w >= lower:
        if checker.accepts(w):
            return w
        w -= 1
        if v - w > MAX_STEPS:
            raise SemanticError(
                f"no value of '{name}' from {v - MAX_STEPS:,} to {v:,} is one the model accepts "
                f"({checker.refusal(v)}); symmem looks at most {MAX_STEPS:,} values below the "
                "largest that fits (docs/limits.md)"
            )
    return None


def _accepted_at_or_above(checker: Checker, v: int, name: str) -> int:
    for w in range(v, v + MAX_STEPS + 1):
        if checker.accepts(w):
            return w
    raise SemanticError(
        f"no value of '{name}' from {v:,} to {v + MAX_STEPS:,} is one the model accepts "
        f"({checker.refusal(v)})"
    )


def _solve(f: _Compiled, budget_bytes: int, for_: str, lower: int, checker: Any) -> SolveResult:
    """The largest value that fits and that ``checker`` (a :class:`Checker` of the symbol)
    accepts."""
    result = _solve_fit(f, budget_bytes, for_, lower)
    v = result.value
    if v is None or checker.accepts(v):
        return result
    if result.unbounded:  # every value fits: the smallest one the model accepts
        above = _accepted_at_or_above(checker, v, for_)
        return replace(result, value=above, bytes_at_value=f(above))
    below = _accepted_at_or_below(checker, v, lower, for_)
    return replace(
        result,
        value=below,
        bytes_at_value=f(below) if below is not None else result.bytes_at_value,
        bytes_at_next=f(below + 1) if below is not None else result.bytes_at_next,
        largest_fitting=v,
        refused=checker.refusal(v),
    )


def _solve_fit(f: _Compiled, budget_bytes: int, for_: str, lower: int) -> SolveResult:
    """The largest value that fits, whether or not the model accepts it."""
    at_lower = f(lower)
    if not _grows(f):
        if at_lower <= budget_bytes:
            return SolveResult(for_, lower, at_lower, None, budget_bytes, "constant", lower)
        return SolveResult(for_, None, at_lower, None, budget_bytes, "constant", lower)
    if at_lower > budget_bytes:
        return SolveResult(
            for_,
            None,
            at_lower,
            f(lower + 1),
            budget_bytes,
            "closed-form" if f.coeffs is not None else "bisection",
            lower,
        )
    method = "bisection"
    v: int | None = None
    if f.coeffs is not None:
        guess, method = _closed_form_guess(f, budget_bytes)
        if guess is not None:
            v = max(guess, lower)
            # verify and adjust by exact evaluation (a few steps at most; bisect if further off)
            for _ in range(8):
                if f(v) > budget_bytes:
                    v -= 1
                elif f(v + 1) <= budget_bytes:
                    v += 1
                else:
                    break
            else:
                v = None
            if v is not None and v < lower:
                v = None
        if v is None:
            method = "bisection"
    if v is None:
        v = _bisect(f, budget_bytes, lower)
        if v is None:
            return SolveResult(for_, lower, at_lower, None, budget_bytes, "unbounded", lower)
    at_v, at_next = f(v), f(v + 1)
    if not (at_v <= budget_bytes < at_next):  # pragma: no cover - non-monotone memory
        raise SemanticError(f"memory is not monotone in '{for_}' near {v}; cannot solve exactly")
    return SolveResult(for_, v, at_v, at_next, budget_bytes, method, lower)


# ---------------------------------------------------------------- frontier
@record
class Frontier:
    """For each value of ``outer``, the largest ``inner`` that fits."""

    inner: str
    outer: str
    rows: tuple[tuple[int, SolveResult], ...]
    budget_bytes: int
    #: values of ``outer`` the model refuses (as ``--set`` would), with the reason
    refused: tuple[tuple[int, str], ...] = ()


def _iterable(values: Any) -> Iterable[Any]:
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise OptionError(f"expected a sequence of values, got {values!r}"[:200])
    return values


def _check_frontier_size(n: int, outer: str) -> None:
    if n > MAX_FRONTIER:
        raise OptionError(
            f"{n:,} values of '{outer}': a frontier solves for at most "
            f"{MAX_FRONTIER:,} (docs/limits.md); use a coarser range (a:b:step)"
        )


def default_range(q: Quantity, name: str) -> list[int]:
    """Powers of two from 1 up to 4x the symbol's default (or 2^16 without one)."""
    as_quantity(q)
    as_name(name, "symbol", OptionError)
    if name not in q.symbols:
        hint = suggest(name, list(q.symbols))
        raise OptionError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
    default = q.values.get(q.symbols[name])
    top = 2**16
    if default is not None and sympy.sympify(default).is_Integer and int(default) > 0:
        top = 4 * int(default)
    out, v = [], 1
    while v <= top:
        out.append(v)
        v *= 2
    return out


def frontier(
    q: Quantity,
    budget: int | str,
    inner: str,
    outer: str,
    outer_values: Iterable[int] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Frontier:
    """The largest ``inner`` for each value of ``outer`` (default: :func:`default_range`)."""
    as_quantity(q)
    as_name(inner, "inner", OptionError)
    as_name(outer, "outer", OptionError)
    if inner == outer:
        raise OptionError(f"--for {inner} given twice")
    budget_bytes = parse_budget(budget)
    if outer_values is None:
        values = default_range(q, outer)
    else:
        items = _iterable(outer_values)
        if isinstance(items, Sized):  # judged by its size before each value is converted
            _check_frontier_size(len(items), outer)
        # plain ints (a range the CLI parsed) need no conversion; at most one value more
        # than the limit is read from an iterator without a size
        values = [
            w if type(w) is int else as_whole(w, f"a value of '{outer}'", OptionError)
            for w in itertools.islice(items, MAX_FRONTIER + 1)
        ]
    if not values:
        raise OptionError(f"empty range for '{outer}'")
    _check_frontier_size(len(values), outer)
    check_int(max(values, key=abs), f"a value of '{outer}'")
    _one_symbol(q, inner, {outer: values[0]})  # unknown symbols, symbols without a value
    x, y = q.symbols[inner], q.symbols[outer]
    rest = {s: v for s, v in q.values.items() if s not in (x, y)}
    expr = q.expr
    for _ in range(4):
        new = substitute(expr, rest)
        if new == expr:
            break
        expr = new
    coefficients = _coefficients(expr, x, y)
    by_outer = Checker(q.constraints, rest, [y])
    both = Checker(q.constraints, rest, [x, y])
    rows: list[tuple[int, SolveResult]] = []
    refused: list[tuple[int, str]] = []
    for i, w in enumerate(values):
        if progress is not None and i % 4096 == 0:
            progress(i, len(values))
        why = by_outer.fixed_violation or by_outer.refusal(w)
        if why is not None:
            refused.append((w, why))
            continue
        if coefficients is None:  # floor / Min / Max: one solve per value
            rows.append((w, solve(q, budget_bytes, inner, fixed={outer: w})))
            continue
        f = _Compiled(None, x, tuple(Fraction(c) for c in coefficients(w)))
        rows.append((w, _solve(f, budget_bytes, inner, 1, _Slice(both, w))))
    if progress is not None:
        progress(len(values), len(values))
    return Frontier(inner, outer, tuple(rows), budget_bytes, tuple(refused))


class _Slice:
    """A two-symbol Checker with its second symbol fixed: the checks of one frontier row."""

    divisor_of = None

    def __init__(self, checker: Checker, w: int) -> None:
        self.checker, self.w = checker, w

    def accepts(self, v: int) -> bool:
        return self.checker.accepts(v, self.w)

    def refusal(self, v: int) -> str | None:
        return self.checker.refusal(v, self.w)


def _coefficients(
    expr: sympy.Expr, x: sympy.Symbol, y: sympy.Symbol
) -> Callable[[int], tuple[Any, ...]] | None:
    """A function of ``y`` giving the exact coefficients of ``expr`` as a polynomial in ``x``
    (highest degree first): the closed form per frontier row; None when it is not one."""
    if (
        expr.free_symbols - {x, y}
        or not powers_are_small(expr)
        or expr.has(
            sympy.floor, sympy.ceiling, sympy.Min, sympy.Max, sympy.Piecewise, sympy.Abs, sympy.Mod
        )
    ):
        return None
    try:
        poly = sympy.Poly(expr, x)
    except sympy.PolynomialError:
        return None
    coeffs = poly.all_coeffs()
    if any(c.free_symbols - {y} for c in coeffs):
        return None
    fn = compile_exact(coeffs, [y])
    return lambda w: fn(w)
