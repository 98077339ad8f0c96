"""Hugging Face ``config.json`` import (see docs/import.md)."""

from __future__ import annotations


def config_to_mem(text: str, filename: str = "config.json") -> str:
    """The `.mem` text for a Hugging Face config.json's contents."""
    from symmem.hf.importer import config_text_to_mem

    return config_text_to_mem(text, filename)
