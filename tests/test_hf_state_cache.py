"""The inference cache of the state-space and hybrid families against what transformers'
cache allocates: Mamba-2, Falcon-Mamba and Jamba, each a published config
(tests/data/hf) shrunk to a few small layers (the same kinds of layers and the same
layer pattern), run on the CPU for ``s`` tokens with ``use_cache=True``.  The bytes of
every tensor in the returned cache (attention keys and values; Mamba conv and recurrent
states) must equal symmem's ``kv_cache`` (``mode = infer``, fp32) for 1 and 2 sequences
and two lengths: the Mamba state does not grow with the context, the attention cache does.
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

SHRUNK: dict[str, dict[str, Any]] = {
    "mamba-codestral-7b-v0.1": {
        "hidden_size": 32,
        "num_heads": 8,
        "head_dim": 8,
        "n_groups": 2,
        "state_size": 8,
        "vocab_size": 64,
        "num_hidden_layers": 3,
        "time_step_rank": 4,
    },
    "falcon-mamba-7b": {
        "hidden_size": 16,
        "intermediate_size": 32,
        "state_size": 4,
        "time_step_rank": 3,
        "vocab_size": 64,
        "num_hidden_layers": 3,
    },
    "jamba-v0.1": {
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_experts": 4,
        "mamba_dt_rank": 4,
        "mamba_d_state": 4,
        "vocab_size": 64,
        "num_hidden_layers": 8,
        "attn_layer_period": 4,
        "attn_layer_offset": 2,
    },
}


def _config(stem: str) -> dict[str, Any]:
    cfg = json.loads((DATA / f"{stem}.json").read_text())
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    return {**cfg, **SHRUNK[stem]}


def _model(cfg: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    cls = getattr(transformers, config_to_writer(dict(cfg), "config.json").hf_class)
    # FalconMambaMixer's weight init reads its norms before it makes them (transformers
    # 5.x): build on the meta device, which skips it, then give the weights values
    with torch.device("meta"):
        model = cls(AutoConfig.for_model(**cfg))
    model = model.to_empty(device="cpu")
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    for b in model.buffers():
        b.fill_(1.0)
    return model.eval()


def _cache_bytes(cache: Any) -> int:
    total = 0
    for layer in cache.layers:
        for name in ("keys", "values", "conv_states", "recurrent_states"):
            value = getattr(layer, name, None)
            tensors = value.values() if isinstance(value, dict) else [value]
            tensors = value if isinstance(value, list) else tensors
            total += sum(t.numel() * t.element_size() for t in tensors if t is not None)
    return total


@pytest.mark.parametrize("stem", sorted(SHRUNK))
def test_state_cache_equals_transformers(stem: str) -> None:
    cfg = _config(stem)
    model = _model(cfg)
    text = config_text_to_mem(json.dumps(cfg), "config.json")
    seen = []
    for b, s in ((1, 3), (2, 7)):
        with torch.no_grad():
            out = model(torch.randint(0, 64, (b, s)), use_cache=True)
        measured = _cache_bytes(out.past_key_values)
        sym = symmem.parse(text, set_values={"batch": b, "seq_len": s})
        assert sym.memory("infer", precision="fp32").kv_cache.evaluate() == measured, (b, s)
        seen.append(measured)
    assert seen[0] > 0


def test_llama4_chunked_and_full_kv_cache_equals_transformers() -> None:
    """Llama 4 text at 8 layers (chunk 4 tokens, a full-attention layer every 4th, MoE every
    other layer): transformers' cache keeps a chunked layer in its sliding-window layer.
    As for every sliding window (tests/test_hf_cache.py, docs/import.md), symmem holds
    min(s, window) tokens there, the cache returned between steps window - 1: one token
    per chunked layer more once s >= window."""
    cfg = json.loads((DATA / "llama-4-scout-17b-16e-instruct-text.json").read_text())
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    cfg.update(
        hidden_size=64,
        head_dim=16,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=32,
        intermediate_size_mlp=48,
        num_local_experts=4,
        interleave_moe_layer_step=2,
        vocab_size=64,
        num_hidden_layers=8,
        attention_chunk_size=4,
    )
    model = _model(cfg)
    text = config_text_to_mem(json.dumps(cfg), "config.json")
    per_token = 2 * 2 * 16 * 4  # keys and values, 2 kv heads of 16, fp32
    for s in (3, 10):
        with torch.no_grad():
            out = model(torch.randint(0, 64, (1, s)), use_cache=True)
        measured = _cache_bytes(out.past_key_values)
        chunked = sum(
            type(x).__name__ == "DynamicSlidingWindowLayer" for x in out.past_key_values.layers
        )
        assert chunked == 6  # layers 3 and 7 have no RoPE: full attention
        full_tokens = 2 * s
        held = min(s, 4) if s < 4 else 3
        assert measured == per_token * (full_tokens + chunked * held)  # hand count
        sym = symmem.parse(text, set_values={"batch": 1, "seq_len": s})
        extra = chunked * per_token if s >= 4 else 0
        assert sym.memory("infer", precision="fp32").kv_cache.evaluate() == measured + extra
