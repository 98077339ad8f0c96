"""The Hugging Face families: every module in this package registers its model types on import.

Adding a family is adding one file here (``<model_type>.py``); nothing else
lists model types.  Most files are one :class:`~symmem.hf.decoder.DecoderSpec`
(data); a family whose structure the spec does not cover is a function over
the same skeleton (:func:`~symmem.hf.decoder.build_decoder`) or, for the
encoders, over :mod:`symmem.hf.writer`.
"""

from __future__ import annotations

import importlib
import pkgutil

from symmem.hf.registry import Family, catalogue, register, supported_model_types

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Family", "catalogue", "register", "supported_model_types"]
