"""Hugging Face ``config.json`` -> ``.mem`` text (see docs/import.md).

The importer reads JSON only: transformers is never imported at run time.
Each supported ``model_type`` has one function in :mod:`symmem.hf.families`
that reads the fields it needs through :class:`HFConfig` (which applies the
defaults of the matching transformers config class and names a missing
required field) and fills a :class:`MemWriter`, which renders the symbols,
blocks and model body a person can read and edit.

Layer stacks are never unrolled: :meth:`MemWriter.stack` turns the per-layer
list of block names into consecutive ``repeat`` runs (DeepSeek's dense-then-MoE
layers) or a repeated period (Gemma-2's sliding / full alternation, Qwen-MoE's
``decoder_sparse_step``).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symmem.errors import ImportHFError

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
                f"{self.filename}: {self.model_type} config has no '{key}' field (required to count parameters)"
            )
        if default is not None:
            self.defaults_applied.append(f"{key} = {_fmt_value(default)}")
        return default

    def int(self, key: builtins.str, default: Any = _MISSING, *, minimum: builtins.int = 1) -> builtins.int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ImportHFError(
                f"{self.filename}: '{key}' must be an integer >= {minimum}, not {json.dumps(value)}"
            )
        return value

    def opt_int(self, key: builtins.str, default: builtins.int | None = None, *, minimum: builtins.int = 1) -> builtins.int | None:
        """An optional size: an explicit null is None (the class derives it); absent is ``default``."""
        if key in self.data and self.data[key] is None:
            return None
        if not self.has(key):
            value: builtins.int | None = self.raw(key, default)
            return value
        return self.int(key, minimum=minimum)

    def bool(self, key: builtins.str, default: Any = _MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ImportHFError(f"{self.filename}: '{key}' must be true or false, not {json.dumps(value)}")
        return value

    def float(self, key: builtins.str, default: Any = _MISSING) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ImportHFError(f"{self.filename}: '{key}' must be a number >= 0, not {json.dumps(value)}")
        return float(value)

    def str(self, key: builtins.str, default: Any = _MISSING) -> builtins.str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise ImportHFError(f"{self.filename}: '{key}' must be a string, not {json.dumps(value)}")
        return value

    def act(self, key: builtins.str, default: Any = _MISSING) -> builtins.str:
        name = self.str(key, default)
        if name not in ACTIVATIONS:
            raise ImportHFError(
                f"{self.filename}: {key} = '{name}' is not an activation symmem knows; "
                f"supported: {', '.join(sorted(ACTIVATIONS))}"
            )
        return ACTIVATIONS[name]

    def unsupported(self, key: builtins.str, why: builtins.str, value: Any = _MISSING) -> ImportHFError:
        shown = self.data.get(key) if value is _MISSING else value
        return ImportHFError(f"{self.filename}: {key} = {json.dumps(shown)} is not supported: {why}")


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


@dataclass
class MemWriter:
    """Collects the pieces of one ``.mem`` file and renders them."""

    cfg: HFConfig
    model_name: str
    #: the transformers class the counts correspond to
    hf_class: str
    notes: list[str] = field(default_factory=list)
    symbols: dict[str, tuple[str, str]] = field(default_factory=dict)
    blocks: dict[str, list[str]] = field(default_factory=dict)
    body: list[str] = field(default_factory=list)
    header_options: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ pieces
    def sym(self, name: str, value: Any, comment: str = "") -> str:
        """Declare a symbol (named after its config field) and return its name."""
        if name not in self.symbols:
            self.symbols[name] = (_fmt_value(value), comment)
        return name

    def note(self, text: str) -> None:
        self.notes.append(text)

    def block(self, name: str, lines: Sequence[str]) -> str:
        self.blocks[name] = list(lines)
        return name

    def stack(self, keys: Sequence[str], count: str = "num_hidden_layers", name: str = "layers",
              indent: str = "  ") -> list[str]:
        """``repeat`` statements for a per-layer list of block names (never unrolled).

        Consecutive equal layers form one run.  More than three runs that are a
        whole number of copies of a shorter period become one ``repeat`` of
        the period.  ``count`` is the expression for ``len(keys)``.
        """
        n = len(keys)
        runs = _runs(keys)
        if len(runs) == 1:
            return [f"{indent}repeat {count} {name} {{ {keys[0]} }}"] if n else []
        if len(runs) > 3:
            for p in range(2, n // 2 + 1):
                if n % p == 0 and list(keys) == list(keys[:p]) * (n // p):
                    inner = "; ".join(
                        k if c == 1 else f"repeat {c} {{ {k} }}" for k, c in _runs(keys[:p])
                    )
                    total = count if count.isidentifier() else f"({count})"
                    return [f"{indent}repeat {total} / {p} {name} {{ {inner} }}  # {n // p} x the {p}-layer period"]
        out: list[str] = []
        start = 0
        for k, c in runs:
            where = f"layer {start}" if c == 1 else f"layers {start}-{start + c - 1}"
            out.append(f"{indent}repeat {c} {{ {k} }}  # {where}")
            start += c
        return out

    # ------------------------------------------------------------ rendering
    def _context(self) -> int | None:
        for key in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = self.cfg.data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def render(self) -> str:
        c = self.cfg
        lines = [
            f"# {c.model_type}: imported from {Path(c.filename).name} by `symmem import-hf`",
            f"# (model_type = \"{c.model_type}\"; counts as transformers' {self.hf_class} builds it).",
        ]
        arch = c.data.get("architectures")
        if isinstance(arch, list) and arch:
            lines.append(f"# architectures: {', '.join(str(a) for a in arch)}")
        for note in self.notes:
            lines.append(f"# {note}")
        dtype = c.data.get("torch_dtype", c.data.get("dtype"))
        if isinstance(dtype, str):
            lines.append(f"# checkpoint dtype: {dtype} (symmem counts elements; bytes follow --precision)")
        quant = c.data.get("quantization_config")
        if isinstance(quant, dict):
            method = quant.get("quant_method", "unknown")
            lines.append(f"# quantization_config: {method}; counts are of logical parameters (choose the weight "
                         "dtype with --precision; packed checkpoint tensors hold the same values in fewer bytes).")
        if c.defaults_applied:
            lines.append("# absent from the file, transformers' defaults: " + ", ".join(dict.fromkeys(c.defaults_applied)))
        lines.append("")
        for name, (value, comment) in self.symbols.items():
            lines.append(f"{name} = {value}" + (f"  # {comment}" if comment else ""))
        ctx = self._context()
        lines.append(f"seq_len = {min(ctx, 4096) if ctx else 512}  # workload for memory figures, not from the config"
                     + (f" (the model allows {ctx} positions)" if ctx else "") + "; change with --set")
        lines.append("batch = 1  # workload, not from the config")
        for name, body in self.blocks.items():
            lines.append("")
            lines.append(f"block {name} {{")
            lines += [f"  {ln}" for b in body for ln in b.split("\n")]
            lines.append("}")
        lines.append("")
        opts = ", ".join(["input = [batch, seq_len]", *self.header_options])
        lines.append(f"model {self.model_name}({opts}) {{")
        lines += self.body
        lines.append("}")
        return "\n".join(lines) + "\n"


def _runs(keys: Sequence[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for k in keys:
        if runs and runs[-1][0] == k:
            runs[-1] = (k, runs[-1][1] + 1)
        else:
            runs.append((k, 1))
    return runs


def model_name_for(cfg: HFConfig) -> str:
    name = "".join(ch if ch.isalnum() else "_" for ch in cfg.model_type)
    return name if name[:1].isalpha() else f"m_{name}"


Family = Callable[[HFConfig], MemWriter]


def families() -> dict[str, Family]:
    from symmem.hf.families import FAMILIES

    return FAMILIES


def supported_model_types() -> list[str]:
    return sorted(families())


def config_to_writer(data: Any, filename: str) -> MemWriter:
    if not isinstance(data, dict):
        raise ImportHFError(f"{filename}: a config.json holds a JSON object, not {type(data).__name__}")
    cfg = HFConfig(data, filename)
    if "model_type" not in data:
        raise ImportHFError(
            f"{filename}: no 'model_type' field; supported model types: {', '.join(supported_model_types())}"
        )
    table = families()
    if cfg.model_type not in table:
        from symmem.errors import suggest

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
        raise ImportHFError(f"{filename}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
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
