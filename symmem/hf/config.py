"""One ``config.json`` read the way transformers reads it, and the names it maps to.

The lowest room of :mod:`symmem.hf`: :class:`HFConfig` applies the defaults of
the matching transformers config class (remembering each one, so that the
emitted file can say which values did not come from the file) and names a
missing required field; :data:`ACTIVATIONS` maps Hugging Face activation names
to symmem's.  Nothing here renders text or knows a family.
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from symmem.errors import ImportHFError
from symmem.limits import MAX_IMPORTED_LAYERS

_MISSING = object()

#: Hugging Face activation names (transformers.activations.ACT2FN) -> symmem's ``act``.
ACTIVATIONS: dict[str, str] = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_accurate": "gelu_tanh",
    "relu": "relu",
    "relu2": "relu2",
    "silu": "silu",
    "swish": "silu",
    "quick_gelu": "quick_gelu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
}


class HFConfig:
    """The fields of one config.json, read with the transformers class's defaults.

    Every default applied is remembered, so that the emitted file can say which
    values did not come from the file.
    """

    def __init__(self, data: dict[str, Any], filename: builtins.str) -> None:
        self.data = data
        self.filename = filename
        self.model_type = str(data.get("model_type", ""))
        self.defaults_applied: list[builtins.str] = []

    def has(self, key: builtins.str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: builtins.str, default: Any = _MISSING) -> Any:
        """The value, the default (recorded) when absent or null, or an error naming the field."""
        if self.has(key):
            return self.data[key]
        if default is _MISSING:
            raise ImportHFError(
                f"{self.filename}: {self.model_type} config has no '{key}' field (required to "
                "count parameters)"
            )
        if default is not None:
            self.defaults_applied.append(f"{key} = {fmt_value(default)}")
        return default

    def int(
        self, key: builtins.str, default: Any = _MISSING, *, minimum: builtins.int = 1
    ) -> builtins.int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ImportHFError(
                f"{self.filename}: '{key}' must be an integer >= {minimum}, not "
                f"{json.dumps(value)[:60]}"
            )
        if value.bit_length() > 3400:  # about 10^1000: symmem's limit on any number
            raise ImportHFError(f"{self.filename}: '{key}' is too large (docs/limits.md)")
        if "layer" in key and value > MAX_IMPORTED_LAYERS:  # the importer lists layers one by one
            raise ImportHFError(
                f"{self.filename}: '{key}' = {value:,} layers; symmem imports models of up to "
                f"{MAX_IMPORTED_LAYERS:,} layers (docs/limits.md)"
            )
        return value

    def opt_int(
        self, key: builtins.str, default: builtins.int | None = None, *, minimum: builtins.int = 1
    ) -> builtins.int | None:
        """An optional size: an explicit null is None (the class derives it); absent is
        ``default``."""
        if key in self.data and self.data[key] is None:
            return None
        if not self.has(key):
            value: builtins.int | None = self.raw(key, default)
            return value
        return self.int(key, minimum=minimum)

    def bool(self, key: builtins.str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ImportHFError(
                f"{self.filename}: '{key}' must be true or false, not {json.dumps(value)}"
            )
        return value

    def float(self, key: builtins.str, default: Any = _MISSING) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ImportHFError(
                f"{self.filename}: '{key}' must be a number >= 0, not {json.dumps(value)}"
            )
        return float(value)

    def str(self, key: builtins.str, default: Any = _MISSING) -> builtins.str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise ImportHFError(
                f"{self.filename}: '{key}' must be a string, not {json.dumps(value)}"
            )
        return value

    def act(self, key: builtins.str, default: Any = _MISSING) -> builtins.str:
        name = self.str(key, default)
        if name not in ACTIVATIONS:
            raise ImportHFError(
                f"{self.filename}: {key} = '{name}' is not an activation symmem knows; "
                f"supported: {', '.join(sorted(ACTIVATIONS))}"
            )
        return ACTIVATIONS[name]

    def unsupported(
        self, key: builtins.str, why: builtins.str, value: Any = _MISSING
    ) -> ImportHFError:
        shown = self.data.get(key) if value is _MISSING else value
        return ImportHFError(
            f"{self.filename}: {key} = {json.dumps(shown)} is not supported: {why}"
        )


def fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def model_name_for(cfg: HFConfig) -> str:
    """The model's name in the ``.mem`` file: its ``model_type`` as an identifier."""
    name = "".join(ch if ch.isalnum() else "_" for ch in cfg.model_type)
    return name if name[:1].isalpha() else f"m_{name}"
