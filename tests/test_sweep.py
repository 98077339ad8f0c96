"""sweep: vectorised evaluation equal to exact sympy substitution, int64 when safe, Python ints when
not."""

from __future__ import annotations

import json
import os
import random
import sys
from fractions import Fraction
from pathlib import Path
from typing import TextIO

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symmem
from symmem.errors import OptionError
from symmem.grids import parse_grid, parse_values
from symmem.model import Quantity
from symmem.sweep import compile_expr, sweep, sweep_arrays, write_table
from symmem.symbols import sym

b, s, w = sym("batch"), sym("seq_len"), sym("window")
SYMS = {"batch": b, "seq_len": s, "window": w}


def q(expr: sympy.Expr, **values: int) -> Quantity:
    return Quantity(
        sympy.sympify(expr), {SYMS[k]: sympy.Integer(v) for k, v in values.items()}, SYMS
    )


def subs(expr: sympy.Expr, **point: int) -> int | sympy.Rational:
    return sympy.sympify(expr).xreplace({SYMS[k]: sympy.Integer(v) for k, v in point.items()})


# ------------------------------------------------------------------ grid syntax
def test_parse_values() -> None:
    assert parse_values("1:4") == [1, 2, 3, 4]  # inclusive
    assert parse_values("1:64:16") == [1, 17, 33, 49]
    assert parse_values("512,1024, 2048") == [512, 1024, 2048]
    assert parse_values(range(3)) == [0, 1, 2]
    assert parse_values(7) == [7]
    assert parse_grid("batch=1:3") == ("batch", [1, 2, 3])


def test_empty_range() -> None:
    with pytest.raises(OptionError, match="empty range"):
        parse_values("64:1", "batch")


def test_empty_list() -> None:
    with pytest.raises(OptionError, match="empty"):
        parse_values(",", "batch")


def test_bad_value() -> None:
    with pytest.raises(OptionError, match="'x' is not an integer"):
        parse_values("1,x", "batch")


def test_bad_step() -> None:
    with pytest.raises(OptionError, match="step must be positive"):
        parse_values("1:10:0", "batch")


def test_grid_without_equals() -> None:
    with pytest.raises(OptionError, match="name=values"):
        parse_grid("batch")


def test_unknown_grid_symbol() -> None:
    with pytest.raises(OptionError, match="unknown symbol 'bach'"):
        sweep_arrays({"m": q(b)}, {"bach": [1]})


def test_missing_values() -> None:
    with pytest.raises(OptionError, match="symbols without a value: seq_len"):
        sweep_arrays({"m": q(b * s)}, {"batch": [1]})


def test_grid_too_large_for_memory() -> None:
    # 10^6 x 10^6 points x 2 columns cannot be held in 1 GiB
    with pytest.raises(OptionError, match="points x 3 columns.*available"):
        sweep_arrays(
            {"m": q(b * s)}, {"batch": "1:1000000", "seq_len": "1:1000000"}, available=2**30
        )


def test_one_axis_too_large_is_refused_before_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10^11 values x 40 bytes (list pointer + int object) = 3.6 TiB: refused before list(range(...))
    # would raise MemoryError (it did: a traceback from the CLI)
    monkeypatch.setattr("symmem.grids.available_memory", lambda: 2**30)
    with pytest.raises(OptionError, match="100,000,000,000 values.*available"):
        parse_values("1:100000000000", "batch")
    with pytest.raises(OptionError, match="99,999,999,999 values.*available"):
        parse_values(range(1, 10**11), "batch")
    assert parse_values("1:1000", "batch")[-1] == 1000


# ------------------------------------------------------------------ exactness
def test_polynomial_int64_equals_subs() -> None:
    expr = 7 * b * s**2 + 3 * b * s + 11 * s + 5
    cols = sweep_arrays({"m": q(expr)}, {"batch": "1:16", "seq_len": [1, 512, 4096, 131072]})
    assert cols["m"].dtype == np.int64
    assert compile_expr(sympy.expand(expr), (b, s)).mode == "polynomial"
    for i in random.Random(0).sample(range(len(cols["m"])), 20):
        assert int(cols["m"][i]) == subs(
            expr, batch=int(cols["batch"][i]), seq_len=int(cols["seq_len"][i])
        )


def test_overflow_falls_back_to_python_ints() -> None:
    # 10^12 * batch * seq_len^2 at seq_len = 10^5 is 10^22 * batch > 2^63: exact Python ints
    expr = 10**12 * b * s**2 + 1
    cols = sweep_arrays({"m": q(expr)}, {"batch": [1, 3], "seq_len": [10**5]})
    assert [int(v) for v in cols["m"]] == [10**22 + 1, 3 * 10**22 + 1]


def test_just_below_int64_stays_int64_and_exact() -> None:
    # 2^62 - 1 + batch stays below 2^63 - 1 for batch <= 2^62
    expr = (2**62 - 1) + b
    cols = sweep_arrays({"m": q(expr)}, {"batch": [1, 2**61]})
    assert cols["m"].dtype == np.int64
    assert [int(v) for v in cols["m"]] == [2**62, 2**62 - 1 + 2**61]


def test_rational_coefficients() -> None:
    # int4 weights: half a byte per element; batch/2 + 3 is fractional at odd batch
    cols = sweep_arrays({"m": q(b / 2 + 3)}, {"batch": [2, 4]})
    assert cols["m"].dtype == np.int64 and list(cols["m"]) == [4, 5]
    cols = sweep_arrays({"m": q(b / 2 + 3)}, {"batch": [1, 2]})
    assert list(cols["m"]) == [3.5, 4.0]


def test_floor_and_ceiling_stay_integer() -> None:
    # sliding window: seq_len tokens in ceil(seq_len / window) blocks; floor/ceil of huge ratios
    # where
    # float64 would be wrong: (2^60 + 1) // 3 is not float((2^60 + 1) / 3) rounded
    expr = sympy.ceiling(s / w) * 7 + sympy.floor((s + 1) / 3)
    cols = sweep_arrays({"m": q(expr)}, {"seq_len": [1, 100, 2**60 + 1], "window": [3, 4096]})
    for i in range(len(cols["m"])):
        sl, win = int(cols["seq_len"][i]), int(cols["window"][i])
        assert int(cols["m"][i]) == -(-sl // win) * 7 + (sl + 1) // 3


def test_min_is_exact() -> None:
    expr = sympy.Min(s, w) * b * 2
    cols = sweep_arrays({"m": q(expr)}, {"batch": [1, 2], "seq_len": [10, 5000], "window": [4096]})
    assert [int(v) for v in cols["m"]] == [20, 8192, 40, 16384]


def test_constant_quantity() -> None:
    cols = sweep_arrays({"m": q(sympy.Integer(42))}, {"batch": [1, 2, 3]})
    assert list(cols["m"]) == [42, 42, 42]


@settings(max_examples=60, deadline=None)
@given(
    c=st.lists(st.integers(-(10**6), 10**9), min_size=4, max_size=4),
    den=st.integers(1, 8),
    k=st.integers(1, 50),
    bs=st.lists(st.integers(1, 10**4), min_size=1, max_size=5),
    ss=st.lists(st.integers(1, 10**6), min_size=1, max_size=5),
)
def test_lambdify_equals_subs(c: list[int], den: int, k: int, bs: list[int], ss: list[int]) -> None:
    expr = (c[0] * b * s**2 + c[1] * b * s + c[2] * s) / den + c[3] * sympy.floor(s / k) * b
    cols = sweep_arrays({"m": q(expr)}, {"batch": bs, "seq_len": ss})
    for i in range(len(cols["m"])):
        exact = subs(expr, batch=int(cols["batch"][i]), seq_len=int(cols["seq_len"][i]))
        got = cols["m"][i]
        if cols["m"].dtype == np.int64 or cols["m"].dtype == object:  # exact: ints (or Fractions)
            assert (
                sympy.Rational(str(got)) == exact
                if isinstance(got, Fraction)
                else int(got) == exact
            )
        else:  # fractional values with numerators below 2^53: the correctly rounded quotient
            assert float(got) == float(sympy.Rational(exact))


def test_llama_memory_matches_subs_at_random_points() -> None:
    m = symmem.load("llama2-7b", free=["batch", "seq_len"])
    total = m.memory(mode="train", attention="eager").total
    cols = sweep_arrays({"total": total}, {"batch": "1:64", "seq_len": "128:8192:128"})
    rng = random.Random(1)
    for i in rng.sample(range(len(cols["total"])), 25):
        bv, sv = int(cols["batch"][i]), int(cols["seq_len"][i])
        assert int(cols["total"][i]) == total.evaluate(batch=bv, seq_len=sv)


# ------------------------------------------------------------------ API and files
def test_quantity_sweep_returns_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    df = sweep(q(2 * b), {"batch": "1:3"})
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["batch", "value"] and list(df["value"]) == [2, 4, 6]


def test_without_pandas_a_dict_of_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    out = sweep(q(2 * b), {"batch": [1, 2]})
    assert isinstance(out, dict) and list(out["value"]) == [2, 4]


def test_progress_callback() -> None:
    calls: list[tuple[int, int]] = []
    sweep_arrays({"m": q(b)}, {"batch": "1:10"}, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (10, 10)


def test_write_csv_json_parquet(tmp_path: Path) -> None:
    cols = sweep_arrays(
        {"m": q(10**20 * b + 1)}, {"batch": [1, 2]}
    )  # beyond int64: exact ints in the files
    write_table(cols, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text().splitlines() == [
        "batch,m",
        f"1,{10**20 + 1}",
        f"2,{2 * 10**20 + 1}",
    ]
    write_table(cols, tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())[1] == {"batch": 2, "m": 2 * 10**20 + 1}
    pytest.importorskip("pyarrow")
    cols = sweep_arrays({"m": q(3 * b)}, {"batch": [1, 2]})
    write_table(cols, tmp_path / "a.parquet")
    import pandas as pd

    assert list(pd.read_parquet(tmp_path / "a.parquet")["m"]) == [3, 6]


def test_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(OptionError, match="needs pyarrow"):
        write_table({"x": np.arange(3)}, tmp_path / "a.parquet")
    assert not list(tmp_path.iterdir())


def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="unknown format"):
        write_table({"x": np.arange(3)}, tmp_path / "a.xlsx")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import symmem.sweep as sw

    target = tmp_path / "a.csv"
    target.write_text("old\n")

    def boom(columns: object, fh: TextIO) -> None:
        fh.write("batch,m\n1,")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sw, "_write_csv", boom)
    with pytest.raises(RuntimeError):
        write_table({"x": np.arange(3)}, target)
    assert target.read_text() == "old\n"  # untouched
    assert os.listdir(tmp_path) == ["a.csv"]  # no temp file left
