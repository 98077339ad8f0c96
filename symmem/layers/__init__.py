"""The layer catalogue: every module in this package registers its kinds on import.

Adding a layer kind is adding one file here; nothing else lists kinds.
"""

from __future__ import annotations

import importlib
import pkgutil

from symmem.layers.base import Layer, ParamTensor, Saved, register, registered

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def catalogue() -> dict[str, type[Layer]]:
    """Every registered kind by DSL name (aliases included)."""
    return registered()


def kinds() -> list[type[Layer]]:
    """Each registered kind once, sorted by name."""
    seen: dict[str, type[Layer]] = {}
    for cls in registered().values():
        seen[cls.kind] = cls
    return [seen[k] for k in sorted(seen)]


__all__ = ["Layer", "ParamTensor", "Saved", "catalogue", "kinds", "register"]
