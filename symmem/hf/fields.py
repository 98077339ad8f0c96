"""Config fields that several families read the same way.

Every default here is the one the transformers config class (or, where the
class leaves the field out, the modeling code's ``getattr`` fallback) applies
when the field is absent; the sources are transformers'
``models/<type>/configuration_<type>.py`` and ``modeling_<type>.py``
(checked against transformers 5.x).  Required fields (the sizes that define a
model: hidden size, layer count, heads, vocabulary, FFN width) have no silent
default: their absence is an :class:`~symmem.errors.ImportHFError`.
"""

from __future__ import annotations

from typing import Literal

from symmem.hf.config import HFConfig
from symmem.hf.writer import MemWriter

#: which layers use sliding-window attention, following each config class:
#: ``layer_types`` (only an explicit ``layer_types`` list), ``all`` (mistral, mixtral,
#: phi3: every layer when ``sliding_window`` is set), ``qwen2`` (from
#: ``max_window_layers`` on, when ``use_sliding_window``), ``qwen3_moe`` (every layer when
#: ``use_sliding_window``), ``gemma2`` (even layers, when ``sliding_window`` is set),
#: ``pattern`` (Gemma-3, Cohere-2, EXAONE-4: layer i slides unless (i + 1) is a multiple
#: of ``sliding_window_pattern``), ``alternate`` (gpt-oss: even layers slide)
WindowScheme = Literal["layer_types", "all", "qwen2", "qwen3_moe", "gemma2", "pattern", "alternate"]


def rope_note(c: HFConfig, w: MemWriter) -> None:
    """Note rotary scaling, which changes no count."""
    for key in ("rope_scaling", "rope_parameters"):
        if c.has(key):
            rs = c.data[key]
            kind = rs.get("rope_type", rs.get("type", "default")) if isinstance(rs, dict) else rs
            w.note(f"{key}: {kind} (rotary scaling has no parameters: counts are unchanged)")
            return


def dropout(w: MemWriter, c: HFConfig, key: str, default: float) -> str:
    """A ``dropout(key)`` statement when the config's probability is non-zero, else ''."""
    p = c.float(key, default)
    if p == 0:
        return ""
    return f"dropout({w.sym(key, p)})"


def tie_word_embeddings(c: HFConfig, default: bool) -> bool:
    """Whether the LM head shares the token embedding's weight."""
    return c.bool("tie_word_embeddings", default)


def core_sizes(c: HFConfig, w: MemWriter) -> tuple[int, int]:
    """The symbols every Llama-style config has; returns (hidden size, heads)."""
    w.sym("vocab_size", c.int("vocab_size"))
    hidden = c.int("hidden_size")
    w.sym("hidden_size", hidden)
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    heads = c.int("num_attention_heads")
    w.sym("num_attention_heads", heads)
    return hidden, heads


def head_dim(c: HFConfig, w: MemWriter, hidden: int, heads: int, default: int | None) -> str | None:
    """``head_dim`` for attention(...): None when it equals hidden_size / num_attention_heads."""
    hd = c.opt_int("head_dim", default)
    if hd is None:
        return None
    if hidden % heads == 0 and hd == hidden // heads:
        return None
    return w.sym("head_dim", hd, "differs from hidden_size / num_attention_heads")


def kv_heads(
    c: HFConfig, w: MemWriter, heads: int, default: int | None, key: str = "num_key_value_heads"
) -> str | None:
    """``kv_heads`` for attention(...): None when every query head has its own key/value head."""
    kv = c.opt_int(key, default)
    if kv is None or kv == heads:
        return None
    if heads % kv:
        raise c.unsupported(key, f"num_attention_heads = {heads} is not a multiple of it", kv)
    return w.sym(key, kv, "grouped-query attention" if kv > 1 else "multi-query attention")


def default_sliding_window(c: HFConfig, value: int) -> None:
    """Apply a class's ``sliding_window`` default when the field is absent (an explicit null
    stays)."""
    if "sliding_window" not in c.data:
        c.defaults_applied.append(f"sliding_window = {value}")
        c.data = {**c.data, "sliding_window": value}


def layer_windows(c: HFConfig, n: int, scheme: WindowScheme | None, pattern: int = 0) -> list[bool]:
    """Which of the ``n`` layers use sliding-window attention (True); see :data:`WindowScheme`.
    ``pattern`` is the class's ``sliding_window_pattern`` default (scheme ``pattern``)."""
    if scheme is None:
        return [False] * n
    if scheme == "gemma2" and not c.has("sliding_window"):
        return [False] * n
    if c.has("layer_types"):
        types = c.data["layer_types"]
        if not isinstance(types, list) or len(types) != n:
            raise c.unsupported("layer_types", f"expected a list of {n} layer types")
        for t in types:
            if t not in ("full_attention", "sliding_attention"):
                raise c.unsupported("layer_types", f"unknown layer type '{t}'")
        return [t == "sliding_attention" for t in types]
    if scheme == "layer_types":
        return [False] * n
    if scheme == "all":
        return [c.has("sliding_window")] * n
    if scheme == "qwen2":
        use = c.bool("use_sliding_window", False)
        start = c.int("max_window_layers", 28, minimum=0)
        return [use and i >= start for i in range(n)]
    if scheme == "qwen3_moe":
        return [c.bool("use_sliding_window", False)] * n
    if scheme == "pattern":
        if not c.has("sliding_window"):
            return [False] * n
        p = c.int("sliding_window_pattern", pattern)
        return [bool((i + 1) % p) for i in range(n)]
    if scheme == "alternate":
        return [c.has("sliding_window") and i % 2 == 0 for i in range(n)]
    return [bool((i + 1) % 2) for i in range(n)]  # gemma2: even layers (0, 2, ...) slide


def sparse_layers(c: HFConfig, n: int, has_experts: bool) -> list[str]:
    """Qwen-MoE: layer i is MoE unless in mlp_only_layers or (i + 1) % decoder_sparse_step != 0."""
    step = c.int("decoder_sparse_step", 1)
    only = c.raw("mlp_only_layers", [])
    if not isinstance(only, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in only
    ):
        raise c.unsupported("mlp_only_layers", "expected a list of layer indices")
    return [
        "moe" if (i not in only and has_experts and (i + 1) % step == 0) else "dense"
        for i in range(n)
    ]
