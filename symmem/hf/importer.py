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
import os
from pathlib import Path
from typing import Any

from symmem.errors import ImportHFError, suggest
from symmem.files import read_regular_file
from symmem.hf.config import HFConfig
from symmem.hf.families import Family, catalogue, supported_model_types
from symmem.hf.writer import MemWriter
from symmem.limits import MAX_DIGITS, MAX_JSON_NESTING, MAX_SOURCE_BYTES

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
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some editors write
    if len(text) > MAX_SOURCE_BYTES:
        raise ImportHFError(
            f"{filename}: {len(text):,} characters; symmem reads configs of up to "
            f"{MAX_SOURCE_BYTES:,} (docs/limits.md)"
        )
    depth = _nesting(text)
    if depth > MAX_JSON_NESTING:
        raise ImportHFError(
            f"{filename}: JSON nested {depth:,} deep; symmem reads configs nested up to "
            f"{MAX_JSON_NESTING} deep (docs/limits.md)"
        )
    try:
        data = json.loads(text, parse_int=lambda digits: _json_int(digits, filename))
    except json.JSONDecodeError as exc:
        raise ImportHFError(
            f"{filename}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None
    except ImportHFError:
        raise
    except (ValueError, RecursionError) as exc:  # a number of more than 4,300 digits
        raise ImportHFError(f"{filename}: cannot read: {str(exc)[:120]} (docs/limits.md)") from None
    return config_to_writer(data, filename).render()


def _json_int(digits: str, filename: str) -> int:
    """A JSON integer, refused above symmem's digit limit before Python converts it (Python
    itself refuses more than 4,300 digits, with a message about its own settings)."""
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise ImportHFError(
            f"{filename}: an integer of {len(digits.lstrip('-')):,} digits ({digits[:12]}...); "
            f"symmem computes with numbers below 10^{MAX_DIGITS} (docs/limits.md)"
        )
    return int(digits)


def _nesting(text: str) -> int:
    """How deep brackets nest in JSON text (strings skipped), without parsing it: Python's
    json module recurses once per level."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_NESTING:
                return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def import_file(path: str | Path) -> str:
    """The ``.mem`` text for a config.json on disk (or a model directory holding one)."""
    if not isinstance(path, str | os.PathLike) or isinstance(path, bytes):
        raise ImportHFError(f"expected the path of a config.json, got {path!r}"[:200])
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    text = read_regular_file(p, ImportHFError)
    return config_text_to_mem(text, str(p))
