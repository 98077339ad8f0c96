"""Evaluate quantities over a grid of symbol values, vectorised and exact.

``sweep({"total": q}, {"batch": "1:64", "seq_len": [512, 1024]})`` evaluates
every quantity at every point of the Cartesian product of the grids.

Exactness.  Expressions are compiled once with
``sympy.lambdify(args, expr, "numpy", cse=True)`` and evaluated in int64, which
is exact as long as no intermediate overflows:

* A polynomial in the grid symbols (the usual case: memory is linear in batch,
  quadratic in seq_len) is evaluated as its expanded integer polynomial (the
  rational coefficients scaled by their common denominator ``D``).  Every
  intermediate of a sum of monomials is bounded by ``sum |c| * prod(max|x|^e)``
  over the grid's extreme corner; if that bound fits in int64 the evaluation
  is exact, otherwise it runs on object arrays of Python ints (exact, slower).
* ``floor(a)`` / ``ceiling(a)`` (shapes with strides, windows) are rewritten to
  integer floor division ``n // d`` of the numerator and denominator of ``a``,
  never float64.  Such expressions are also evaluated in float64 as a shadow;
  any disagreement beyond rounding (an int64 overflow) or a magnitude near
  2^62 switches to Python ints.
* Anything else that cannot be kept in integers falls back to exact
  evaluation point by point (slow; reported in :attr:`Compiled.mode`).

The result is divided by ``D`` at the end; it is an int64 column when every
value is an integer (memory in bytes always is, for whole tensors) and float64
otherwise.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from symmem.constraints import Checker
from symmem.errors import OptionError, SemanticError, suggest
from symmem.files import atomic_binary, atomic_text
from symmem.grids import check_size, parse_values
from symmem.limits import check_number
from symmem.quantity import Quantity, as_quantity
from symmem.records import record
from symmem.values import as_name, powers_are_small, substitute

INT64_MAX = 2**63 - 1
#: evaluate in chunks of this many points (bounds temporaries, drives the progress bar)
CHUNK = 1 << 20


# ---------------------------------------------------------------- compiling
class _ifloordiv(sympy.Function):  # noqa: N801 - printed name for lambdify
    """floor(n / d) for integers, evaluated as n // d."""


class _iceildiv(sympy.Function):  # noqa: N801
    """ceiling(n / d) for integers, evaluated as -((-n) // d)."""


def _np_floordiv(n: Any, d: Any) -> Any:
    return n // d


def _np_ceildiv(n: Any, d: Any) -> Any:
    return -((-n) // d)


_INT_MODULES: list[Any] = [{"_ifloordiv": _np_floordiv, "_iceildiv": _np_ceildiv}, "numpy"]


def _integer_division_form(expr: sympy.Expr) -> sympy.Expr | None:
    """floor/ceiling of rationals rewritten as integer divisions; None if not possible."""

    def rewrite(node: sympy.Expr) -> sympy.Expr:
        if isinstance(node, sympy.floor | sympy.ceiling):
            inner = rewrite(node.args[0])
            n, d = sympy.fraction(sympy.together(inner))
            cls = _ifloordiv if isinstance(node, sympy.floor) else _iceildiv
            return cls(n, d) if d != 1 else n
        if not node.args:
            return node
        return node.func(*[rewrite(a) for a in node.args])

    out = rewrite(expr)
    # every remaining number must be an integer (a fraction would become float division)
    if any(not a.is_Integer for a in out.atoms(sympy.Number)):
        return None
    return out


@record
class Compiled:
    """A quantity compiled for grid evaluation."""

    args: tuple[sympy.Symbol, ...]
    #: "polynomial" (int64 or Python ints by the bound), "integer-division", or "pointwise"
    mode: str
    fn: Callable[..., Any] | None
    denominator: int
    #: polynomial: (coefficient, exponents) terms of the integer numerator
    terms: tuple[tuple[int, tuple[int, ...]], ...] | None
    shadow: Callable[..., Any] | None
    expr: sympy.Expr

    def bound(self, maxima: Sequence[int]) -> int | None:
        """An upper bound of every intermediate over a grid with these maxima (polynomials only)."""
        if self.terms is None:
            return None
        total = 0
        for c, exps in self.terms:
            m = abs(c)
            for x, e in zip(maxima, exps, strict=True):
                m *= max(abs(x), 1) ** e
            total += m
        return total


@lru_cache(maxsize=128)
def compile_expr(expr: sympy.Expr, args: tuple[sympy.Symbol, ...]) -> Compiled:
    """Compile a quantity (all its symbols among ``args``) for grid evaluation."""
    extra = expr.free_symbols - set(args)
    if extra:  # pragma: no cover - callers check first
        raise OptionError(f"symbols without a value: {sorted(map(str, extra))}")
    if not powers_are_small(expr):  # a power that may explode: judged point by point
        return Compiled(args, "pointwise", None, 1, None, None, expr)
    nonpoly = expr.has(
        sympy.floor, sympy.ceiling, sympy.Min, sympy.Max, sympy.Piecewise, sympy.Abs, sympy.Mod
    )
    if not nonpoly:
        try:
            poly = sympy.Poly(expr, *args) if args else None
        except sympy.PolynomialError:
            poly = None
        if poly is not None and all(c.is_Rational for c in poly.coeffs()):
            den = math.lcm(*[int(c.q) for c in poly.coeffs()]) if poly.coeffs() else 1
            terms = tuple((int(c * den), tuple(int(e) for e in monom)) for monom, c in poly.terms())
            int_expr = sympy.Add(
                *[c * sympy.Mul(*[a**e for a, e in zip(args, ex, strict=True)]) for c, ex in terms]
            )
            fn = sympy.lambdify(args, int_expr, "numpy", cse=True)
            return Compiled(args, "polynomial", fn, den, terms, None, expr)
        if not args:
            value = sympy.sympify(expr)
            if value.is_Rational:
                return Compiled(
                    args, "polynomial", None, int(value.q), ((int(value.p), ()),), None, expr
                )
    num, den = sympy.fraction(sympy.together(expr))
    if den.is_Integer:
        form = _integer_division_form(num)
        if form is not None:
            fn = sympy.lambdify(args, form, _INT_MODULES, cse=True)
            shadow = sympy.lambdify(args, num, "numpy", cse=True)
            return Compiled(args, "integer-division", fn, int(den), None, shadow, expr)
    return Compiled(args, "pointwise", None, 1, None, None, expr)


def _finish(num: np.ndarray, den: int) -> np.ndarray:
    """num / den: ints when every value is an integer; else float64 when every numerator is
    below 2^53 (then each value is the correctly rounded quotient), else exact Fractions."""
    if den == 1:
        return num
    if num.dtype == object:
        if all(int(v) % den == 0 for v in num):
            return np.array([int(v) // den for v in num], dtype=object)
    elif np.all(num % den == 0):
        return num // den
    ints = [int(v) for v in num]
    if max(abs(v) for v in ints) < 2**53:
        return np.array(ints, dtype=np.float64) / den
    return np.array([v // den if v % den == 0 else Fraction(v, den) for v in ints], dtype=object)


def _as_int_column(values: np.ndarray) -> np.ndarray:
    """Object arrays of Python ints become int64 when every value fits."""
    if values.dtype == object and len(values) and all(isinstance(v, int) for v in values):
        lo, hi = min(values), max(values)
        if lo >= -INT64_MAX and hi <= INT64_MAX:
            return values.astype(np.int64)
    return values


def evaluate_compiled(c: Compiled, columns: Sequence[np.ndarray]) -> np.ndarray:
    """Exact values of the compiled quantity at the points given by ``columns``;
    :class:`~symmem.limits.LimitError` for a value of more than ``MAX_DIGITS`` digits."""
    values = _evaluate_compiled(c, columns)
    if values.dtype == object:
        for v in values:
            if isinstance(v, int | Fraction):
                check_number(v, "a value of the sweep")
    return values


def _evaluate_compiled(c: Compiled, columns: Sequence[np.ndarray]) -> np.ndarray:
    n = len(columns[0]) if columns else 1
    if c.mode == "polynomial":
        maxima = [int(np.max(np.abs(col))) if len(col) else 0 for col in columns]
        bound = c.bound(maxima)
        if c.fn is None:  # a constant
            num = np.full(n, c.terms[0][0] if c.terms else 0, dtype=object)
            return _as_int_column(_finish(num, c.denominator))
        if bound is not None and bound <= INT64_MAX:
            num = np.asarray(c.fn(*columns))
            if num.ndim == 0:
                num = np.full(n, int(num), dtype=np.int64)
            return _finish(num.astype(np.int64, copy=False), c.denominator)
        num = np.asarray(c.fn(*[col.astype(object) for col in columns]), dtype=object)
        if num.ndim == 0:
            num = np.full(n, num.item(), dtype=object)
        return _as_int_column(_finish(num, c.denominator))
    if c.mode == "integer-division":
        assert c.fn is not None and c.shadow is not None
        try:
            with np.errstate(all="ignore"):
                num = np.asarray(c.fn(*columns))
                approx = np.asarray(
                    c.shadow(*[col.astype(np.float64) for col in columns]), dtype=np.float64
                )
            if num.ndim == 0:
                num = np.full(n, int(num), dtype=np.int64)
                approx = np.full(n, float(approx))
            ok = (
                num.dtype.kind == "i"
                and bool(np.all(np.abs(approx) < 2.0**62))
                and bool(np.all(np.abs(num - approx) <= 1e-6 * np.maximum(np.abs(approx), 1.0) + 2))
            )
        except OverflowError:  # a constant beyond int64 (vocab = 10^400) meets an int64 column
            ok = False
        if not ok:
            try:
                num = np.asarray(c.fn(*[col.astype(object) for col in columns]), dtype=object)
            except OverflowError:  # a float among the terms (a Piecewise's nan) meets a huge int
                return _pointwise(c, columns, n)
            if num.ndim == 0:
                num = np.full(n, num.item(), dtype=object)
            return _as_int_column(_finish(num, c.denominator))
        return _finish(num.astype(np.int64), c.denominator)
    return _pointwise(c, columns, n)


def _pointwise(c: Compiled, columns: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Exact but slow: each point substituted into the expression."""
    out = []
    for i in range(n):
        sub = {a: sympy.Integer(int(col[i])) for a, col in zip(c.args, columns, strict=True)}
        v = sympy.sympify(substitute(c.expr, sub))
        out.append(int(v) if v.is_Integer else float(v))
    arr = np.array(out, dtype=object)
    if all(isinstance(v, int) for v in out):
        return _as_int_column(arr)
    return arr.astype(np.float64)


# ---------------------------------------------------------------- sweeping
def _grid_expr(q: Quantity, names: Sequence[str]) -> sympy.Expr:
    syms = {q.symbols[n] for n in names}
    values = {s: v for s, v in q.values.items() if s not in syms}
    expr = q.expr
    for _ in range(4):
        new = substitute(expr, values)
        if new == expr:
            break
        expr = new
    extra = expr.free_symbols - syms
    if extra:
        raise OptionError(
            "symbols without a value: "
            + ", ".join(sorted(map(str, extra)))
            + "; give them a value (--set) or a grid (--grid)"
        )
    return expr


def sweep_arrays(
    quantities: Mapping[str, Quantity],
    grids: Mapping[str, Any],
    *,
    progress: Callable[[int, int], None] | None = None,
    available: int | None = None,
    refused: Callable[[int, str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Columns: one per grid symbol (the Cartesian product, first symbol slowest), one per
    quantity."""
    if not quantities:
        raise OptionError("nothing to sweep: no quantity given")
    if not grids:
        raise OptionError("no grid given: use --grid name=values (for example --grid batch=1:64)")
    first = next(iter(quantities.values()))
    names = list(grids)
    for name in names:
        if name not in first.symbols:
            hint = suggest(name, list(first.symbols))
            raise OptionError(f"--grid: unknown symbol '{name}'" + (f": {hint}" if hint else ""))
    for col in quantities:
        if col in grids:
            raise OptionError(f"a quantity and a grid symbol are both named '{col}'")
    values = [np.asarray(parse_values(grids[n], n), dtype=object) for n in names]
    n_points = math.prod(len(v) for v in values)
    check_size(n_points, len(names) + len(quantities), available)
    syms = tuple(first.symbols[n] for n in names)
    exprs = {k: _grid_expr(q, names) for k, q in quantities.items()}
    compiled = {k: compile_expr(e, syms) for k, e in exprs.items()}
    as_int = [np.asarray(v.astype(np.int64)) if max(v) <= INT64_MAX else v for v in values]
    mesh = np.meshgrid(*as_int, indexing="ij") if len(as_int) > 1 else [as_int[0]]
    cols = [m.reshape(-1) for m in mesh]
    # the points the model refuses (head_dim not whole, a size of 0) are left out
    keep = accepted(quantities.values(), syms, cols)
    if not bool(np.all(keep)):
        at = int(np.argmin(keep))
        point = [int(c[at]) for c in cols]
        why = _checker(quantities.values(), syms).refusal(*point) or "refused"
        n_refused = int(np.size(keep) - np.count_nonzero(keep))
        if n_refused == n_points:
            raise SemanticError(f"the model accepts no point of the grid: {why}")
        if refused is not None:
            refused(n_refused, why)
        cols = [c[keep] for c in cols]
        n_points = len(cols[0])
    out: dict[str, np.ndarray] = {n: c for n, c in zip(names, cols, strict=True)}
    results: dict[str, list[np.ndarray]] = {k: [] for k in quantities}
    done = 0
    for start in range(0, n_points, CHUNK):
        chunk = [c[start : start + CHUNK] for c in cols]
        for k, c in compiled.items():
            results[k].append(evaluate_compiled(c, chunk))
        done = min(n_points, start + CHUNK)
        if progress is not None:
            progress(done, n_points)
    for k, parts in results.items():
        dtypes = {p.dtype for p in parts}
        if len(dtypes) > 1:
            if any(d.kind == "O" for d in dtypes):
                parts = [p.astype(object) for p in parts]
            elif any(d.kind == "f" for d in dtypes):
                parts = [p.astype(np.float64) for p in parts]
        out[k] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return out


def _checker(quantities: Iterable[Quantity], syms: tuple[sympy.Symbol, ...]) -> Checker:
    qs = list(quantities)
    constraints = tuple(dict.fromkeys(c for q in qs for c in q.constraints))
    values = {s: v for s, v in qs[0].values.items() if s not in syms}
    return Checker(constraints, values, syms)


def accepted(
    quantities: Iterable[Quantity], syms: tuple[sympy.Symbol, ...], cols: Sequence[np.ndarray]
) -> np.ndarray:
    """A boolean mask: the grid points every constraint of the quantities' model accepts
    (:mod:`symmem.constraints`), evaluated exactly and vectorised, test by test."""
    qs = list(quantities)
    n = len(cols[0]) if cols else 1
    keep = np.ones(n, dtype=bool)
    checker = _checker(qs, syms)
    if checker.fixed_violation is not None:
        raise SemanticError(f"the model refuses its values: {checker.fixed_violation}")
    for kind, e in checker.tests():
        rows = np.nonzero(keep)[0]
        if not len(rows):
            break
        sub = [c[rows] for c in cols]
        try:
            with np.errstate(all="raise"):
                ok = _test(kind, e, syms, sub)
        except (ZeroDivisionError, FloatingPointError, OverflowError, TypeError, ValueError):
            ok = np.array([checker.accepts(*(int(c[i]) for c in sub)) for i in range(len(rows))])
        keep[rows[~ok]] = False
    return keep


def _test(kind: str, e: sympy.Expr, syms: tuple[sympy.Symbol, ...], cols: list[np.ndarray]) -> Any:
    if kind == "whole":
        num, den = sympy.fraction(sympy.together(e))
        top = evaluate_compiled(compile_expr(num, syms), cols)
        bottom = evaluate_compiled(compile_expr(den, syms), cols)
        if top.dtype.kind == "f" or bottom.dtype.kind == "f":
            raise TypeError("not integers")  # the exact point-by-point path decides
        nonzero = bottom != 0
        safe = np.where(nonzero, bottom, 1)
        return np.asarray(nonzero & (top % safe == 0), dtype=bool)
    value = evaluate_compiled(compile_expr(e, syms), cols)
    return np.asarray(value > 0 if kind == "positive" else value >= 0, dtype=bool)


def to_frame(columns: Mapping[str, np.ndarray]) -> Any:
    """A pandas DataFrame when pandas is installed, else the dict of numpy arrays itself."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        return dict(columns)
    return pd.DataFrame(dict(columns))


def sweep(
    quantities: Mapping[str, Quantity] | Quantity,
    grids: Mapping[str, Any],
    *,
    frame: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Evaluate over the grid; a DataFrame (pandas installed, ``frame=True``) or a dict of
    arrays."""
    if isinstance(quantities, Quantity):
        qs = {"value": quantities}
    elif isinstance(quantities, Mapping):
        qs = {
            as_name(k, "quantity name", OptionError): as_quantity(v) for k, v in quantities.items()
        }
    else:
        raise OptionError(
            f"expected a Quantity or a mapping of names to Quantities, got {quantities!r}"[:200]
        )
    if not isinstance(grids, Mapping):
        raise OptionError(
            f"grids: expected a mapping of symbol names to values, got {grids!r}"[:200]
        )
    cols = sweep_arrays(qs, grids, progress=progress)
    return to_frame(cols) if frame else cols


# ---------------------------------------------------------------- writing
def check_out(path: str | os.PathLike[str]) -> tuple[str, str, str]:
    """(target, extension, directory) of an output table, or OptionError (unknown format, no
    pyarrow for Parquet, missing directory), checked before a sweep does any work."""
    target = os.fspath(path)
    ext = os.path.splitext(target)[1].lower()
    if target == "-":  # as import-hf's -o - would; a sweep's table is on stdout already
        raise OptionError(
            "--out -: without --out the sweep prints its table on standard output; --out "
            "takes a file name ending .csv, .json or .parquet"
        )
    if ext not in (".csv", ".json", ".parquet"):
        raise OptionError(
            f"--out {target}: unknown format '{ext or '(none)'}'; use .csv, .json or .parquet"
        )
    if ext == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise OptionError(
                "--out .parquet needs pyarrow, which is not installed (pip install pyarrow); "
                "use .csv or .json instead"
            ) from None
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise OptionError(f"--out {target}: the directory {directory} does not exist")
    return target, ext, directory


def write_table(
    columns: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    meta: Mapping[str, Any] | None = None,
) -> str:
    """Write CSV, JSON or Parquet (by extension) atomically: temp file + os.replace.

    ``meta`` (what was assumed and the values used: ``{"values": ..., "config": ...}``) goes
    where the format has room for it: JSON becomes ``{**meta, "rows": [...]}``, Parquet keeps
    it as the schema's ``symmem`` metadata (JSON); CSV has no such place (the CLI prints it).
    Returns the format written.  Nothing is left at ``path`` on error.
    """
    target, ext, _ = check_out(path)
    if ext == ".parquet":
        import json

        for name, col in columns.items():  # Parquet's integers are 64-bit
            if col.dtype == object and any(
                isinstance(v, int) and not -(2**63) <= v < 2**63 for v in col
            ):
                raise OptionError(
                    f"--out {target}: column {name} holds integers beyond 64 bits, which "
                    "Parquet cannot store exactly; use .csv or .json"
                )

        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = pd.DataFrame({k: _plain(v) for k, v in columns.items()})
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if meta is not None:
            extra = {b"symmem": json.dumps(dict(meta)).encode()}
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
        with atomic_binary(target, suffix=ext) as bfh:
            pq.write_table(table, bfh)
    elif ext == ".csv":
        with atomic_text(target, suffix=ext) as fh:
            _write_csv(columns, fh)
    else:
        with atomic_text(target, suffix=ext) as fh:
            _write_json(columns, fh, meta)
    return ext[1:]


def _plain(col: np.ndarray) -> Any:
    if col.dtype == object:
        return [
            int(v) if isinstance(v, int) else float(v) for v in col
        ]  # Fractions: nearest double
    return col


def _cell(v: Any) -> str:
    if isinstance(v, Fraction):
        return f"{v.numerator}/{v.denominator}"
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return str(int(v)) if isinstance(v, int | np.integer) else str(v)


def _write_csv(columns: Mapping[str, np.ndarray], fh: Any) -> None:
    names = list(columns)
    fh.write(",".join(names) + "\n")
    cols = [columns[n] for n in names]
    n = len(cols[0]) if cols else 0
    block = 1 << 16
    for start in range(0, n, block):
        parts = [c[start : start + block].tolist() for c in cols]
        fh.write(
            "".join(",".join(_cell(v) for v in row) + "\n" for row in zip(*parts, strict=True))
        )


def _write_json(
    columns: Mapping[str, np.ndarray], fh: Any, meta: Mapping[str, Any] | None = None
) -> None:
    import json

    names = list(columns)
    cols = [
        [float(v) if isinstance(v, Fraction) else v for v in columns[n].tolist()] for n in names
    ]
    rows = [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]
    json.dump(rows if meta is None else {**meta, "rows": rows}, fh)
