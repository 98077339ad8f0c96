"""Byte budgets: ``"24GB"``, ``"24 gb"``, ``"1.5TiB"`` -> an exact number of bytes.

SI prefixes and IEC prefixes are kept apart, always (as pint does):
``B, KB, MB, GB, TB`` (also ``PB``) are powers of 1000 and
``KiB, MiB, GiB, TiB`` (also ``PiB``) powers of 1024.  Case does not matter
and a space between the number and the unit is allowed.  A number without a
unit is a number of bytes for :func:`parse_bytes` (an overhead of ``"0"``), but
a budget needs a unit (:func:`parse_budget`: ``--budget 24`` is an error with a
hint).  A fractional result is rounded down to whole bytes (a budget is an upper
bound: rounding down never claims memory that is not there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction

from symmem.errors import OptionError, suggest
from symmem.limits import LimitError, check_int, parse_decimal

#: unit (lower case) -> bytes
UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}

_BUDGET = re.compile(
    r"^\s*(?P<num>[0-9][0-9_]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE](?P<exp>[+-]?[0-9]+))?\s*(?P<unit>[a-zA-Z]*)\s*$"
)


def parse_bytes(text: str | int, *, what: str = "budget", minimum: int = 1) -> int:
    """The exact number of bytes ``text`` names; :class:`OptionError` if it is not one
    or is below ``minimum`` (1 for a budget, 0 for an overhead).

    >>> parse_bytes("24GB"), parse_bytes("24 GiB"), parse_bytes("1.5TiB")
    (24000000000, 25769803776, 1649267441664)
    """
    if isinstance(text, bool):
        raise OptionError(f"{what}: expected a size such as '24GB' or '80GiB', got {text!r}")
    if isinstance(text, int):
        check_int(abs(text), what)
        if text < minimum:
            raise OptionError(f"{what} must be {_at_least(minimum)}, got {text} bytes")
        return text
    if not isinstance(text, str):
        raise OptionError(f"{what}: expected a size such as '24GB' or '80GiB', got {text!r}")
    m = _BUDGET.match(text)
    if not m:
        if text.strip().startswith("-"):
            raise OptionError(f"{what} must be {_at_least(minimum)}, got '{text}'")
        raise OptionError(
            f"{what}: '{text}' is not a size; write a number and a unit such as '24GB', '24 GiB' "
            "or '1.5TiB' (KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of "
            "1024)"
        )
    unit = m["unit"].lower() or "b"
    if unit not in UNITS:
        # only a unit at least as long: "XB" is not a misspelt "B"
        hint = suggest(unit, [u for u in UNITS if len(u) >= len(unit)])
        raise OptionError(
            f"{what}: unknown unit '{m['unit']}' in '{text}'; use B, KB, MB, GB, TB (powers of "
            "1000) or KiB, MiB, GiB, TiB (powers of 1024)" + (f" ({hint})" if hint else "")
        )
    try:
        number = parse_decimal(m["num"] + (f"e{m['exp']}" if m["exp"] else ""), what)
    except LimitError as exc:
        raise OptionError(f"{exc.message} ('{text.strip()[:40]}')") from None
    if number is None:  # pragma: no cover - the pattern only matches decimals
        raise OptionError(f"{what}: '{text}' is not a size")
    n = int(number * UNITS[unit])  # floor for positive values
    check_int(n, f"{what} '{text.strip()[:40]}'")
    if n < minimum:
        raise OptionError(f"{what} must be {_at_least(minimum)}, got '{text}'")
    return n


def _at_least(minimum: int) -> str:
    return "positive (at least one byte)" if minimum == 1 else f"at least {minimum} bytes"


def parse_budget(text: str | int, *, what: str = "budget") -> int:
    """A memory budget: a size of at least one byte (``"24GB"``, ``"80GiB"``).

    Text needs a unit: ``"24"`` is an OptionError with a hint (it would be 24 bytes, which
    nobody means; ``"24B"`` says bytes).  A Python int is a number of bytes."""
    if isinstance(text, str):
        m = _BUDGET.match(text)
        if m and not m["unit"]:
            number = text.strip()
            raise OptionError(
                f"{what} '{number}' has no unit: write {number}GB (powers of 1000) or "
                f"{number}GiB (powers of 1024), {number}B for bytes; a card's memory: --gpu "
                "(symmem gpus lists them)"
            )
    return parse_bytes(text, what=what, minimum=1)


def marketed_note(budget: int, cards: Sequence[tuple[str, str, int]]) -> str | None:
    """When a decimal budget (``48GB`` = 48 x 10^9 bytes) equals the marketed size of a catalogued
    card ((key, marketed text, nominal bytes): a card sold as "48 GB" has 48 GiB), say so."""
    if budget % 10**9:
        return None
    gb = budget // 10**9
    same = [key for key, _, nominal in cards if nominal == gb * 2**30]
    if not same:
        return None
    return (
        f'{gb}GB here is {budget:,} bytes ({format_bytes(budget)}); a card sold as "{gb} GB" '
        f"has {gb} GiB ({gb * 2**30:,} bytes): use --gpu {same[0]}"
        + (f" (or {', '.join(same[1:4])})" if len(same) > 1 else "")
        + f", or --budget {gb}GiB"
    )


def parse_overhead(text: str | int, *, what: str = "overhead") -> int:
    """An amount of memory that may be nothing: ``"0"``, ``"0B"``, ``"512MiB"``."""
    return parse_bytes(text, what=what, minimum=0)


def format_bytes(n: int | float, *, binary: bool = True, digits: int = 2) -> str:
    """``85899345920`` -> ``'80.00 GiB'`` (binary, as nvidia-smi shows memory) or ``'85.90 GB'``."""
    base, names = (
        (1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"))
        if binary
        else (1000, ("B", "KB", "MB", "GB", "TB", "PB"))
    )
    sign = "-" if n < 0 else ""
    if isinstance(n, float) and not math.isfinite(n):
        return f"{n} B"
    i = 0
    if isinstance(n, int):  # exact: a byte count may be far above a float's range
        m = abs(n)
        while m >= base ** (i + 1) and i < len(names) - 1:
            i += 1
        if i == 0:
            return f"{sign}{m} B"
        scaled = Fraction(m, base**i)
        if scaled >= 10**15:  # beyond PiB: scientific, from the exact quotient
            return f"{sign}{_scientific(scaled, digits)} {names[i]}"
        return f"{sign}{float(scaled):.{digits}f} {names[i]}"
    x = abs(float(n))
    while x >= base and i < len(names) - 1:
        x /= base
        i += 1
    if i == 0:
        return f"{sign}{int(abs(n))} B"
    if x >= 1e15:
        return f"{sign}{x:.{digits}e} {names[i]}"
    return f"{sign}{x:.{digits}f} {names[i]}"


def _scientific(x: Fraction, digits: int) -> str:
    """``x`` as ``1.23e+400`` without a float (which stops at about 1.8e308)."""
    exponent = len(str(int(x))) - 1
    mantissa = x / Fraction(10) ** exponent
    text = f"{float(mantissa):.{digits}f}"
    if text.startswith("10"):  # rounding carried: 9.999 -> 10.00
        exponent += 1
        text = f"{float(mantissa / 10):.{digits}f}"
    return f"{text}e+{exponent}"
