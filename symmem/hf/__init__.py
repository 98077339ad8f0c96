"""Hugging Face ``config.json`` import (see docs/import.md).

Rooms, from the ground up: :mod:`~symmem.hf.config` (fields with transformers'
defaults), :mod:`~symmem.hf.writer` (``.mem`` text), :mod:`~symmem.hf.registry`,
:mod:`~symmem.hf.fields` (fields several families share), :mod:`~symmem.hf.decoder`
(the decoder skeleton as data), :mod:`symmem.hf.families` (one module per family),
:mod:`~symmem.hf.importer` (JSON in, text out).
"""

from __future__ import annotations

from symmem.hf.importer import config_text_to_mem


def config_to_mem(text: str, filename: str = "config.json") -> str:
    """The `.mem` text for a Hugging Face config.json's contents."""
    return config_text_to_mem(text, filename)
