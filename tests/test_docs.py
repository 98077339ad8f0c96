"""Docs that registries keep honest: a new option, optimizer or precision needs its doc line."""

from __future__ import annotations

from pathlib import Path

import pytest

from symmem.optimizers import OPTIMIZERS
from symmem.options import option_fields
from symmem.precision import PRECISIONS, QUANTS

DOCS = Path(__file__).resolve().parent.parent / "docs"
MEMORY = (DOCS / "memory.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        (f.name, (spec.flag or "--" + f.name.replace("_", "-")).split("/"))
        for f, spec in option_fields()
        if spec.cli is not None
    ],
)
def test_every_memory_option_is_documented(name: str, flags: list[str]) -> None:
    assert any(flag in MEMORY for flag in flags), (
        f"docs/memory.md says nothing of {flags[0]} ({name})"
    )


@pytest.mark.parametrize("name", [*OPTIMIZERS, *PRECISIONS, *QUANTS])
def test_every_preset_is_in_the_tables(name: str) -> None:
    assert f"`{name}`" in MEMORY, f"docs/memory.md has no row for `{name}`"
