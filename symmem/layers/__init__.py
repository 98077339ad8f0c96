"""The layer catalogue: every module in this package registers its kinds on import.

Adding a layer kind is adding one file here; nothing else lists kinds.
"""

from __future__ import annotations

import importlib
import pkgutil

from symmem.layers.base import Layer, ParamTensor, Saved, catalogue, kinds, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base" and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Layer", "ParamTensor", "Saved", "catalogue", "kinds", "register"]
