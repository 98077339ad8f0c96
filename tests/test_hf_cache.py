"""The KV cache of imported decoders against what transformers' cache allocates.

Each config is a published one (tests/data/hf) shrunk to a few small layers
(the same heads, key/value heads, layer types and layer kinds; head size 16, a
4-token sliding window): transformers runs a forward pass of ``s`` tokens on
the CPU with ``use_cache=True`` and the bytes of every key and value tensor in
the returned cache are summed; symmem's ``kv_cache`` (``mode = infer``, fp32)
must equal it.

One documented difference (docs/import.md): a sliding-window layer's cache
holds ``min(s, window)`` tokens in symmem (Mistral's rolling buffer, and what
transformers' ``DynamicSlidingWindowLayer`` holds while a step attends: its
``window - 1`` kept tokens and the new one), while the cache transformers
returns between steps keeps ``window - 1``.  So for ``s >= window`` symmem is
one token per sliding layer above the returned cache: 2 (keys and values) x
kv_heads x head_dim x 4 bytes per sliding layer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import symmem  # noqa: E402
from symmem.hf.importer import config_text_to_mem, config_to_writer  # noqa: E402

DATA = Path(__file__).parent / "data" / "hf"
WINDOW = 4
HEAD = 16
STEMS = [
    "gemma-3-1b-it",
    "gpt-oss-20b",
    "c4ai-command-r7b-12-2024",
    "olmoe-1b-7b-0924",
    "mistral-7b-v0.1",
]


def shrunk(stem: str, layers: int = 8) -> dict[str, Any]:
    cfg = {
        k: v
        for k, v in json.loads((DATA / f"{stem}.json").read_text()).items()
        if not k.startswith("_") and k != "quantization_config"
    }
    heads = cfg["num_attention_heads"]
    cfg.update(
        hidden_size=heads * HEAD, intermediate_size=96, vocab_size=128, num_hidden_layers=layers
    )
    if "head_dim" in cfg:
        cfg["head_dim"] = HEAD
    if "layer_types" in cfg:
        cfg["layer_types"] = cfg["layer_types"][:layers]
    if cfg.get("sliding_window"):
        cfg["sliding_window"] = WINDOW
    for key in ("num_local_experts", "num_experts"):
        if key in cfg:
            cfg[key] = 4
    if "num_experts_per_tok" in cfg:
        cfg["num_experts_per_tok"] = 2
    return cfg


def transformers_cache(model: Any, s: int) -> tuple[int, int]:
    """Bytes of the cache returned after ``s`` tokens, and its number of sliding-window
    layers."""
    with torch.no_grad():
        out = model(torch.randint(0, 128, (1, s)), use_cache=True)
    total, sliding = 0, 0
    for layer in out.past_key_values.layers:
        total += sum(t.numel() * t.element_size() for t in (layer.keys, layer.values))
        sliding += type(layer).__name__ == "DynamicSlidingWindowLayer"
    return total, sliding


def symmem_cache(cfg: dict[str, Any], s: int) -> int:
    text = config_text_to_mem(json.dumps(cfg), "config.json")
    model = symmem.parse(text, set_values={"seq_len": s, "batch": 1})
    value = model.memory("infer", precision="fp32").kv_cache.evaluate()
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize("stem", STEMS)
def test_kv_cache_equals_transformers(stem: str) -> None:
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    cfg = shrunk(stem)
    cls = config_to_writer(dict(cfg), "config.json").hf_class
    torch.manual_seed(0)
    model = getattr(transformers, cls)(AutoConfig.for_model(**cfg)).eval()
    kv = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    per_token = 2 * kv * HEAD * 4  # keys and values, fp32
    for s in (3, 10):  # inside and beyond the window
        measured, sliding = transformers_cache(model, s)
        extra = sliding * per_token if s >= WINDOW else 0
        assert symmem_cache(cfg, s) == measured + extra, s
