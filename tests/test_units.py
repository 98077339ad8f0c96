"""Budgets: SI (powers of 1000) and IEC (powers of 1024) units, always; bad budgets are
OptionErrors."""

from __future__ import annotations

import pytest

from symmem.errors import OptionError
from symmem.units import format_bytes, parse_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24GB", 24 * 10**9),
        ("24 gb", 24 * 10**9),
        ("24 Gb", 24 * 10**9),
        ("24GiB", 24 * 2**30),
        ("24 gib", 24 * 2**30),
        ("1.5TiB", 3 * 2**39),  # 1.5 * 2^40
        ("1.5TB", 1_500_000_000_000),
        ("80GB", 80_000_000_000),
        ("512MiB", 512 * 2**20),
        ("1KB", 1000),
        ("1KiB", 1024),
        ("1000", 1000),  # no unit: bytes
        ("1000B", 1000),
        (" 2 PB ", 2 * 10**15),
        ("0.5KiB", 512),
        ("1.0000000001KB", 1000),  # 1000.0000001 bytes rounds down to whole bytes
        ("1_000MB", 10**9),
        ("1e3MB", 10**9),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


def test_int_budget_is_bytes() -> None:
    assert parse_bytes(12345) == 12345


def test_negative_budget() -> None:
    with pytest.raises(OptionError, match="positive"):
        parse_bytes("-1GB")


def test_word_budget() -> None:
    with pytest.raises(OptionError, match="'lots' is not a size"):
        parse_bytes("lots")


def test_unknown_unit() -> None:
    with pytest.raises(OptionError, match="unknown unit 'GX'"):
        parse_bytes("24 GX")


def test_zero_budget() -> None:
    with pytest.raises(OptionError, match="at least one byte"):
        parse_bytes("0")


def test_zero_int_budget() -> None:
    with pytest.raises(OptionError, match="positive"):
        parse_bytes(0)


def test_sub_byte_budget() -> None:
    with pytest.raises(OptionError, match="at least one byte"):
        parse_bytes("0.5B")


def test_empty_budget() -> None:
    with pytest.raises(OptionError, match="not a size"):
        parse_bytes("")


def test_bool_budget() -> None:
    with pytest.raises(OptionError):
        parse_bytes(True)


def test_format_bytes() -> None:
    assert format_bytes(80 * 2**30) == "80.00 GiB"
    assert format_bytes(81559 * 2**20) == "79.65 GiB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(24 * 10**9, binary=False) == "24.00 GB"
