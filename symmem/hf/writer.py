"""The ``.mem`` text of one imported config: statements, blocks, stacks, the file.

:class:`MemWriter` collects symbols, notes, blocks and the model body and
renders the file a person reads and edits; :func:`call`, :func:`residual` and
:func:`par` render single statements.  Layer stacks are never unrolled:
:meth:`MemWriter.stack` turns the per-layer list of block names into
consecutive ``repeat`` runs (DeepSeek's dense-then-MoE layers) or a repeated
period (Gemma-2's sliding / full alternation, Qwen-MoE's ``decoder_sparse_step``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symmem.hf.config import HFConfig, fmt_value
from symmem.hf.quantization import declarations


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
    #: the model's input shape (an image model's ``[batch, num_channels, H, W]``)
    input_shape: str = "[batch, seq_len]"
    #: image tokens of one image (a vision-language model's, merged into the text stream):
    #: the file declares ``images`` (images per prompt, 1) and the default seq_len adds
    #: ``images x image_tokens`` to its text tokens
    image_tokens: int = 0
    #: the positions the model allows when its own config does not name them (a
    #: vision-language model's text part, read with its config class's defaults)
    context: int | None = None

    # ------------------------------------------------------------ pieces
    def sym(self, name: str, value: Any, comment: str = "") -> str:
        """Declare a symbol (named after its config field) and return its name."""
        if name not in self.symbols:
            self.symbols[name] = (fmt_value(value), comment)
        return name

    def note(self, text: str) -> None:
        self.notes.append(text)

    def block(self, name: str, lines: Sequence[str]) -> str:
        self.blocks[name] = list(lines)
        return name

    def stack(
        self,
        keys: Sequence[str],
        count: str = "num_hidden_layers",
        name: str = "layers",
        indent: str = "  ",
    ) -> list[str]:
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
                    return [
                        f"{indent}repeat {total} / {p} {name} {{ {inner} }}  # {n // p} x the "
                        f"{p}-layer period"
                    ]
            tail = self._period_with_tail(keys, count, name, indent)
            if tail:
                return tail
        out: list[str] = []
        start = 0
        for k, c in runs:
            where = f"layer {start}" if c == 1 else f"layers {start}-{start + c - 1}"
            out.append(f"{indent}repeat {c} {{ {k} }}  # {where}")
            start += c
        return out

    @staticmethod
    def _period_with_tail(
        keys: Sequence[str], count: str, name: str, indent: str
    ) -> list[str] | None:
        """A period of ``p`` layers whose last layer alone differs (Gemma-3's five sliding
        layers and one global), repeated ``n // p`` times, then the ``n % p`` layers left
        over: a prefix of the period, so one run of its first kind whatever ``n`` is."""
        n = len(keys)
        for p in range(2, n // 2 + 1):
            period = list(keys[:p])
            if len(set(period[:-1])) != 1 or period[-1] == period[0] or n % p == 0:
                continue
            if list(keys) == (period * (n // p + 1))[:n]:
                total = count if count.isidentifier() else f"({count})"
                inner = f"repeat {p - 1} {{ {period[0]} }}; {period[-1]}"
                return [
                    f"{indent}repeat {total} // {p} {name} {{ {inner} }}  # {n // p} x the "
                    f"{p}-layer period",
                    f"{indent}repeat {total} % {p} {{ {period[0]} }}  # the {n % p} layers left",
                ]
        return None

    def part(self, name: str, input_shape: str, lines: Sequence[str]) -> None:
        """A named part of the model body (``part encoder(input = [...]) { ... }``): an
        encoder, a decoder, a vision tower; ``lines`` are its statements, indented once."""
        self.body.append(f"  part {name}(input = {input_shape}) {{")
        self.body += [f"    {ln}" for ln in lines]
        self.body.append("  }")

    # ------------------------------------------------------------ rendering
    def context_length(self) -> int | None:
        """The positions the config allows (max_position_embeddings or its aliases), else
        :attr:`context`."""
        own = self._own_context()
        return own if own is not None else self.context

    def _own_context(self) -> int | None:
        for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_target_positions"):
            value = self.cfg.data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def render(self) -> str:
        c = self.cfg
        lines = [
            f"# {c.model_type}: imported from {Path(c.filename).name} by `symmem import-hf`",
            f'# (model_type = "{c.model_type}"; counts as transformers\' {self.hf_class} builds '
            "it).",
        ]
        arch = c.data.get("architectures")
        if isinstance(arch, list) and arch:
            lines.append(f"# architectures: {', '.join(str(a) for a in arch)}")
        for note in self.notes:
            lines.append(f"# {note}")
        declared, said = declarations(c)
        for note in said:
            lines.append(f"# {note}")
        if c.defaults_applied:
            lines.append(
                "# absent from the file, transformers' defaults: "
                + ", ".join(dict.fromkeys(c.defaults_applied))
            )
        lines.append("")
        for name, (value, comment) in self.symbols.items():
            lines.append(f"{name} = {value}" + (f"  # {comment}" if comment else ""))
        ctx = self.context_length()
        # the default workload: up to 4,096 tokens of the context the config itself names,
        # else 512 (a vision-language model whose text part names it)
        own = self._own_context()
        text = min(own, 4096) if own else 512
        seq_len, images = str(text), ""
        if self.image_tokens:
            lines.append(
                "images = 1  # images per prompt, workload: the vision part runs on batch x "
                f"images, the text stream holds images x {self.image_tokens} image tokens; "
                "change with --set"
            )
            seq_len = f"{text} + images * {self.image_tokens}"
            images = f", {text} text tokens and {self.image_tokens} image tokens per image"
        lines.append(
            f"seq_len = {seq_len}  # workload for memory figures, not from the config"
            + images
            + (f" (the model allows {ctx} positions)" if ctx else "")
            + "; change with --set"
        )
        lines.append("batch = 1  # workload, not from the config")
        for name, body in self.blocks.items():
            lines.append("")
            lines.append(f"block {name} {{")
            lines += [f"  {ln}" for b in body for ln in b.split("\n")]
            lines.append("}")
        lines.append("")
        if ctx:
            declared.append(f"max_positions = {ctx}")
        # an imported model is built as transformers builds it: its saved tensors by its rules
        opts = ", ".join(
            [f"input = {self.input_shape}", "impl = transformers", *self.header_options, *declared]
        )
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


# ---------------------------------------------------------------- statements


def _v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def call(kind: str, name: str | None = None, *pos: Any, **kw: Any) -> str:
    """``kind name(pos..., key = value)``; keyword arguments that are None are left out."""
    args = [_v(p) for p in pos] + [f"{k} = {_v(v)}" for k, v in kw.items() if v is not None]
    head = kind if name is None else f"{kind} {name}"
    return f"{head}({', '.join(args)})"


def residual(*stmts: str) -> str:
    """A multi-line ``residual { ... }`` (one statement a line, as in examples/gpt2.mem)."""
    return "residual {\n" + _indent(stmts) + "\n}"


def par(a: Sequence[str], b: Sequence[str]) -> str:
    """``parallel { a } { b }``: both branches read the same input and their outputs add."""
    return "parallel {\n" + _indent(a) + "\n} {\n" + _indent(b) + "\n}"


def _indent(stmts: Sequence[str]) -> str:
    """Statements one a line, indented; empty statements (a zero dropout) are left out."""
    lines = [ln for s in stmts if s for part in s.split("; ") for ln in part.split("\n")]
    return "\n".join(f"  {ln}" for ln in lines)
