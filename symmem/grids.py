"""Grids of symbol values (``1:64``, ``1:64:8``, ``512,1024``) and whether one fits in memory.

Syntax and bounds only (no numpy, no sympy): the CLI reads ``--grid`` and ``--range``
with these before any work; :mod:`symmem.sweep` evaluates over them.  Values are read by
symmem's own decimal parser and bounded (docs/limits.md).
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import SupportsIndex

from symmem.errors import OptionError
from symmem.limits import MAX_DIGITS, LimitError, check_int, parse_decimal
from symmem.values import as_whole

resource: ModuleType | None
try:
    import resource
except ImportError:  # pragma: no cover - not Unix
    resource = None

#: bytes per cell used to estimate whether a grid fits in memory (value + temporaries)
BYTES_PER_CELL = 8 * 3


# ---------------------------------------------------------------- grids
_RANGE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?$")


def parse_values(
    spec: str | int | SupportsIndex | Iterable[int] | range,
    name: str = "grid",
    flag: str = "--grid",
    most: int | None = None,
) -> list[int]:
    """``"1:64"`` (inclusive), ``"1:64:8"``, ``"512,1024,2048"``, an int, or an iterable of ints.

    ``flag`` names the option in messages (``--grid`` or ``--range``); a range of more than
    ``most`` values is refused before it is made."""
    # a spec that is not text (a list the CLI parsed already, 10^8 values) is not printed:
    # formatting it would cost more memory than the values themselves
    shown = spec if isinstance(spec, str | int) else f"({type(spec).__name__})"
    where = f"--range {shown}" if flag == "--range" else f"--grid {name}={shown}"
    if isinstance(spec, bool):
        raise OptionError(f"{flag} {name}: expected integers, got {spec!r}")
    if isinstance(spec, int):
        return [check_int(spec, where)]
    if isinstance(spec, SupportsIndex) and not isinstance(spec, str | range):  # numpy integers
        return [check_int(operator.index(spec), where)]
    if isinstance(spec, range):
        _check_axis(len(spec), name, str(spec), flag)
        values = list(spec)
    elif isinstance(spec, str):
        text = spec.strip().replace("_", "")
        m = _RANGE.match(text)
        if m:
            if any(g and len(g.lstrip("-")) > MAX_DIGITS for g in m.groups()):
                raise OptionError(f"{where[:60]}: a value is too large (docs/limits.md)")
            a, b = int(m[1]), int(m[2])
            step = int(m[3]) if m[3] else 1
            if step <= 0:
                raise OptionError(f"{where}: the step must be positive")
            if b < a:
                raise OptionError(f"{where}: empty range (the end is below the start)")
            n = (b - a) // step + 1
            if most is not None and n > most:
                raise OptionError(
                    f"{where}: {n:,} values; at most {most:,} here (docs/limits.md); "
                    "use a coarser range (a:b:step)"
                )
            _check_axis(n, name, spec, flag)
            values = list(range(a, b + 1, step))
        else:
            values = []
            for part in text.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    number = parse_decimal(part, f"{where}:")
                except LimitError as exc:
                    raise OptionError(exc.message) from None
                if number is None or not isinstance(number, int):
                    raise OptionError(
                        f"{where}: '{part}' is not an integer; use a:b, a:b:step or a,b,c"
                    )
                values.append(number)
    else:
        if not hasattr(spec, "__iter__") or isinstance(spec, bytes | Mapping):
            raise OptionError(f"grid {name}: expected integers, got {spec!r}"[:200])
        # plain ints (a grid the CLI parsed already, 10^7 values) need no conversion: only
        # their size is checked, once, below
        values = [v if type(v) is int else as_whole(v, f"grid {name}", OptionError) for v in spec]
        if values:
            check_int(max(values, key=abs), f"grid {name}")
    if not values:
        raise OptionError(f"{where}: empty: no values")
    if min(values) < 0:
        raise OptionError(f"{where}: sizes cannot be negative ({min(values)})")
    return values


#: bytes a Python list holds per int value (8-byte pointer + a 28-32 byte int object)
BYTES_PER_LISTED_VALUE = 40


def _check_axis(n: int, name: str, spec: str, flag: str = "--grid") -> None:
    """OptionError before materialising one axis of ``n`` values that would not fit in memory
    (``list(range(...))`` of 10^11 values raises MemoryError, or worse, swaps)."""
    need = n * BYTES_PER_LISTED_VALUE
    avail = available_memory()
    if need > avail // 2:
        raise OptionError(
            f"{flag} {name}={spec}: {n:,} values, about {need / 2**30:,.1f} GiB to hold, but only "
            f"{avail / 2**30:,.1f} GiB of memory is available; "
            "use a coarser grid (a:b:step) or fewer values"
        )


def parse_grid(item: str) -> tuple[str, list[int]]:
    """``"batch=1:64"`` -> ``("batch", [1, ..., 64])``."""
    name, sep, spec = item.partition("=")
    name = name.strip()
    if not sep or not name or not spec.strip():
        raise OptionError(f"--grid expects name=values (1:64, 1:64:8 or 512,1024), got '{item}'")
    return name, parse_values(spec, name)


def available_memory() -> int:
    """Bytes of memory this process may still use: the smaller of the machine's
    (MemAvailable; 4 GiB if unknown) and what the address-space limit (``ulimit -v``)
    leaves beside what is mapped already."""
    avail = _machine_memory()
    if resource is not None:
        try:
            soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
            if soft != resource.RLIM_INFINITY:
                with open("/proc/self/statm") as fh:
                    mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
                avail = min(avail, max(0, soft - mapped))
        except (OSError, ValueError):  # pragma: no cover - not Linux
            pass
    return avail


def _machine_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        pass
    try:  # pragma: no cover - non-Linux
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 4 * 1024**3


def check_size(n_points: int, n_columns: int, available: int | None = None) -> None:
    """OptionError if the grid's table would not fit in memory."""
    need = n_points * n_columns * BYTES_PER_CELL
    avail = available_memory() if available is None else available
    if need > avail // 2:
        raise OptionError(
            f"the grid has {n_points:,} points x {n_columns} columns, about "
            f"{need / 2**30:,.1f} GiB to hold, but only {avail / 2**30:,.1f} GiB of memory is "
            "available; use a coarser grid (a:b:step) or fewer values"
        )
