"""The registry of Hugging Face families: ``model_type`` -> the function that imports it.

A family module under :mod:`symmem.hf.families` registers itself on import,
the way layer kinds do (:func:`symmem.layers.base.register`)::

    @register("bert", "roberta")
    def bert(c: HFConfig) -> MemWriter: ...

    register("llama")(DecoderSpec(hf_class="LlamaForCausalLM", ...))

Nothing else lists model types: :func:`supported_model_types`, the importer's
error messages, the docs' checks and the tests iterate this registry.  Import
:mod:`symmem.hf.families` (which imports every family module) before reading it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from symmem.hf.config import HFConfig
from symmem.hf.writer import MemWriter

#: config fields -> the filled writer of one ``.mem`` file
Family = Callable[[HFConfig], MemWriter]
F = TypeVar("F", bound=Family)

_FAMILIES: dict[str, Family] = {}


def register(*model_types: str) -> Callable[[F], F]:
    """Decorator: ``family`` imports configs of these ``model_type`` values."""
    if not model_types:
        raise TypeError("register() needs at least one model_type")

    def add(family: F) -> F:
        for name in model_types:
            if name in _FAMILIES and _FAMILIES[name] is not family:
                raise RuntimeError(f"HF model_type '{name}' registered twice")
            _FAMILIES[name] = family
        return family

    return add


def catalogue() -> dict[str, Family]:
    """Every registered family by ``model_type``."""
    return dict(_FAMILIES)


def supported_model_types() -> list[str]:
    """The registered ``model_type`` values, sorted."""
    return sorted(_FAMILIES)
