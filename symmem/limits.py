"""The largest input symmem accepts, and the one parser of decimal numbers.

Every limit here is documented in docs/limits.md, with the reason for it.  They bound
what a hostile or mistaken input can cost: each is far above any real network (the
largest published models have about 10^12 parameters, 10^2 layers and 10^15 bytes of
memory per job), and each is enforced with a :class:`~symmem.errors.SymmemError` that
names the limit, never a hang, a traceback or the operating system's out-of-memory killer.

:func:`parse_decimal` reads ``768``, ``1_024``, ``0.1``, ``1e23`` and ``1.5e-3`` exactly
(an int, or a :class:`~fractions.Fraction` when the value is not whole), after checking the
number of digits, so that ``1e100000000`` is refused before it is computed.  The DSL's
literals, ``--set``, budgets and grids all go through it: no user text ever reaches
``eval``, ``sympify`` or ``float``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from symmem.errors import SymmemError

#: decimal digits of the largest number symmem reads or computes (10^1000): far above any
#: size or byte count, far below Python's 4,300-digit limit on printing an int
MAX_DIGITS = 1000
#: the largest exponent a power of a size may have: 2^3322 is beyond 10^MAX_DIGITS, so a
#: larger exponent is beyond the limit at every base but 0 and 1 (and sympy would expand
#: ``batch^(10^12)`` into a dense polynomial of 10^12 coefficients)
MAX_EXPONENT = 3321
#: bytes of the largest .mem file or config.json read (a real config is a few kB, the
#: largest bundled model about 4 kB)
MAX_SOURCE_BYTES = 4 * 1024 * 1024
#: nesting depth of the DSL: brackets, powers, blocks inside blocks (real files: under 10)
MAX_NESTING = 100
#: nesting depth of a config.json (real configs: 3)
MAX_JSON_NESTING = 100
#: layers of an imported config that the importer lists one by one (per-layer fields)
MAX_IMPORTED_LAYERS = 100_000
#: symbols one file may declare
MAX_SYMBOLS = 10_000
#: values a frontier (solve --for A --for B) computes one solve for
MAX_FRONTIER = 10_000_000

_DECIMAL = re.compile(
    r"^(?P<int>[0-9][0-9_]*)?(?:\.(?P<frac>[0-9_]*))?(?:[eE](?P<exp>[+-]?[0-9_]+))?$"
)


class LimitError(SymmemError, ValueError):
    """An input beyond one of symmem's documented limits (docs/limits.md)."""


def too_large(what: str) -> LimitError:
    return LimitError(
        f"{what} is too large: symmem computes with numbers below 10^{MAX_DIGITS} (docs/limits.md)"
    )


def parse_decimal(text: str, what: str = "number") -> int | Fraction | None:
    """The exact value of a decimal literal (``1_024``, ``0.1``, ``1e23``), or None when
    ``text`` is not one.  :class:`LimitError` when it has more than :data:`MAX_DIGITS`
    digits or its exponent would make it so."""
    clean = text.strip()
    m = _DECIMAL.match(clean)
    if not m or (m["int"] is None and not m["frac"]):
        return None
    whole = (m["int"] or "0").replace("_", "").lstrip("0") or "0"
    frac = (m["frac"] or "").replace("_", "")
    exp_text = (m["exp"] or "0").replace("_", "")
    if len(exp_text.lstrip("+-")) > 6:  # an exponent of a million digits is refused unread
        raise too_large(f"{what} {text.strip()[:40]}")
    exp = int(exp_text)
    if not (whole + frac).strip("0"):
        return 0
    # digits of the integer part of the value: len(whole) + exp (for a non-zero whole part)
    if len(whole) + len(frac) > MAX_DIGITS + 50 or (whole != "0" and len(whole) + exp > MAX_DIGITS):
        raise too_large(f"{what} {text.strip()[:40]}")
    if whole == "0" and frac.strip("0") and exp > MAX_DIGITS:
        raise too_large(f"{what} {text.strip()[:40]}")
    if exp < -MAX_DIGITS:
        raise LimitError(
            f"{what} {text.strip()[:40]} is too small: symmem reads exponents down to "
            f"-{MAX_DIGITS} (docs/limits.md)"
        )
    value = Fraction(int(whole + frac), 10 ** len(frac)) * Fraction(10) ** exp
    return int(value) if value.denominator == 1 else value


def check_int(value: int, what: str = "the value") -> int:
    """``value`` itself, or :class:`LimitError` when it has more than :data:`MAX_DIGITS`
    digits (checked by size, without printing it)."""
    if value.bit_length() > _MAX_BITS:
        raise too_large(what)
    return value


#: bits of 10^MAX_DIGITS
_MAX_BITS = (10**MAX_DIGITS).bit_length()


def check_number(value: int | Fraction, what: str = "the value") -> int | Fraction:
    """An int or Fraction whose numerator and denominator are within the limit."""
    if isinstance(value, Fraction):
        check_int(value.numerator, what)
        check_int(value.denominator, what)
        return value
    return check_int(value, what)


def power_too_large(base: int | Fraction, exponent: int | Fraction) -> bool:
    """Would ``base ** exponent`` have more than :data:`MAX_DIGITS` digits in its numerator
    or denominator?  Judged from the sizes of the two, before computing it (``10^400^8``
    would take longer than the universe has)."""
    base, exponent = Fraction(base), Fraction(exponent)
    if base == 0 or exponent == 0 or base in (1, -1):
        return False
    top = max(abs(base.numerator), base.denominator)
    p, q = abs(exponent.numerator), exponent.denominator
    if p.bit_length() - q.bit_length() > 40:  # an exponent above 10^12: far too large
        return True
    return (p / q) * (top.bit_length() - 1) * 0.30103 > MAX_DIGITS


def exponent_too_large(exponent: int | Fraction) -> bool:
    """An exponent beyond :data:`MAX_EXPONENT`: the power is too large at every base whose
    numerator or denominator is 2 or more."""
    return abs(Fraction(exponent)) > MAX_EXPONENT


def checked_power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` for the exact Python code symmem compiles (ints and Fractions),
    or :class:`LimitError` when the result would be beyond the limit."""
    exact = isinstance(base, int | Fraction) and isinstance(exponent, int | Fraction)
    if exact and power_too_large(base, exponent):
        raise too_large(f"the power {_short(base)}^{_short(exponent)}")
    return base**exponent


def _short(x: Any) -> str:
    text = str(x)
    return text if len(text) <= 30 else f"{text[:12]}...({len(text)} digits)"
