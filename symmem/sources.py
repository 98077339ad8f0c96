"""Where model text comes from: a ``.mem`` file, a Hugging Face ``config.json``
(converted by :mod:`symmem.hf`), or the name of a bundled example (``symmem zoo``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from symmem.errors import OptionError, SymmemError, suggest
from symmem.files import read_regular_file
from symmem.resources import examples_dir

#: owner/name as the Hugging Face hub spells a repository id
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def zoo_names() -> list[str]:
    """Names of the bundled example models (the ``examples/*.mem`` files)."""
    root = examples_dir()
    return sorted(p.name[: -len(".mem")] for p in root.iterdir() if p.name.endswith(".mem"))


def zoo_text(name: str) -> str:
    return examples_dir().joinpath(f"{name}.mem").read_text(encoding="utf-8")


def read_source(path: str | Path) -> tuple[str, str]:
    """(DSL text, display name) for a path or a bundled model name."""
    if not isinstance(path, str | os.PathLike) or isinstance(path, bytes):
        raise OptionError(f"expected a path or a bundled model name, got {path!r}"[:200])
    p = Path(path)
    if p.is_file():
        raw = read_regular_file(p)
        if p.suffix == ".json":
            from symmem.hf import config_to_mem

            # line:column of a later error point into the generated text, not into the JSON
            return config_to_mem(raw, str(p)), f"{p} (as imported .mem)"
        return raw, str(p)
    if (
        p.is_dir() and (p / "config.json").is_file()
    ):  # a Hugging Face model directory, as import-hf takes
        return read_source(p / "config.json")
    if p.exists():
        raise SymmemError(f"{p}: not a file")
    name = str(path)
    if "/" not in name and not name.endswith((".mem", ".json")):
        names = zoo_names()
        if name in names:
            return zoo_text(name), f"{name}.mem"
        hint = suggest(name, names)
        raise SymmemError(
            f"{name}: no such file, and no bundled model of that name"
            + (f" ({hint})" if hint else "; `symmem zoo` lists them")
        )
    if p.suffix == ".mem" and "/" not in name and p.stem in zoo_names():
        raise SymmemError(f"{p}: no such file (the bundled model is named without .mem: {p.stem})")
    if _HUB_ID.match(name) and not name.endswith((".mem", ".json")):
        # owner/name: a Hugging Face hub id, which symmem does not download
        raise SymmemError(
            f"{name}: no such file. It looks like a Hugging Face hub id: symmem reads a local "
            "config.json and never downloads; get it with `huggingface-cli download "
            f"{name} config.json --local-dir DIR` (or save it from the model page), then "
            "run symmem on DIR/config.json"
        )
    raise SymmemError(f"{p}: no such file")
