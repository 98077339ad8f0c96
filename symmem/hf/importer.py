"""Hugging Face ``config.json`` -> ``.mem`` text (see docs/import.md).

The importer reads JSON only: transformers is never imported at run time.
Each supported ``model_type`` is one module under :mod:`symmem.hf.families`
that registers the function (most are a :class:`~symmem.hf.decoder.DecoderSpec`)
reading the fields it needs through :class:`~symmem.hf.config.HFConfig` (which
applies the defaults of the matching transformers config class and names a
missing required field) and filling a :class:`~symmem.hf.writer.MemWriter`,
which renders the symbols, blocks and model body a person can read and edit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from symmem.errors import ImportHFError, suggest
from symmem.hf.config import HFConfig
from symmem.hf.families import Family, catalogue, supported_model_types
from symmem.hf.writer import MemWriter

__all__ = [
    "config_text_to_mem",
    "config_to_writer",
    "families",
    "import_file",
    "supported_model_types",
]


def families() -> dict[str, Family]:
    """Every supported ``model_type`` and the family that imports it."""
    return catalogue()


def config_to_writer(data: Any, filename: str) -> MemWriter:
    if not isinstance(data, dict):
        raise ImportHFError(
            f"{filename}: a config.json holds a JSON object, not {type(data).__name__}"
        )
    cfg = HFConfig(data, filename)
    if "model_type" not in data:
        raise ImportHFError(
            f"{filename}: no 'model_type' field; supported model types: "
            f"{', '.join(supported_model_types())}"
        )
    table = families()
    if cfg.model_type not in table:
        hint = suggest(cfg.model_type, list(table))
        raise ImportHFError(
            f"{filename}: model_type '{cfg.model_type}' is not supported"
            + (f" ({hint})" if hint else "")
            + f"; supported model types: {', '.join(supported_model_types())}"
        )
    return table[cfg.model_type](cfg)


def config_text_to_mem(text: str, filename: str = "config.json") -> str:
    """The ``.mem`` text for the contents of a Hugging Face config.json."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportHFError(
            f"{filename}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    return config_to_writer(data, filename).render()


def import_file(path: str | Path) -> str:
    """The ``.mem`` text for a config.json on disk (or a model directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportHFError(f"{p}: cannot read: {exc}") from None
    return config_text_to_mem(text, str(p))
