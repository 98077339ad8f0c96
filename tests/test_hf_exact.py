"""Imported config.json files against transformers, the oracle: exact parameter counts.

Each published config in tests/data/hf is instantiated by transformers on the
``meta`` device (no weights, no download) and symmem's count of the imported
``.mem`` must equal ``sum(p.numel() for p in model.parameters())`` exactly
(``parameters()`` already counts a tied weight once).  The class built is the
one the family names (``MemWriter.hf_class``, listed in docs/import.md): the
base model for encoders (``BertModel``: embeddings, layers, pooler),
``T5ForConditionalGeneration`` for T5, the ``*ForCausalLM`` class for decoders.
On transformers 5.x every config here builds in well under a second on the meta
device (fused expert tensors), so no config needs a reduced layer count; the
symbolic layer count is still checked against transformers at other depths
(test_layer_count_is_symbolic).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import symmem  # noqa: E402
from symmem.hf.importer import (  # noqa: E402
    config_text_to_mem,
    config_to_writer,
    supported_model_types,
)

DATA = Path(__file__).parent / "data" / "hf"
CONFIGS = sorted(DATA.glob("*.json"))
MOE_TYPES = {
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
    "deepseek_v2",
    "deepseek_v3",
    "olmoe",
    "granitemoe",
    "phimoe",
    "gpt_oss",
    "jamba",
    "llama4_text",
}
#: model types with one published config here so far (every other type has two or more)
SINGLE_CONFIG = {"olmoe", "gemma3_text", "gptj", "cohere2", "glm", "phimoe", "smollm3"}
SINGLE_CONFIG |= {"seed_oss", "helium", "ernie4_5"}
SINGLE_CONFIG |= {"mamba2", "falcon_mamba", "jamba"}


def fields(path: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


def hf_class(cfg: dict[str, Any]) -> str:
    """The transformers class the family counts (what docs/import.md names)."""
    return config_to_writer(dict(cfg), "config.json").hf_class


def hf_model(cfg: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    config = AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        return getattr(transformers, hf_class(cfg))(config)


def hf_total(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def symmem_model(cfg: dict[str, Any], **set_values: int) -> symmem.Model:
    return symmem.parse(config_text_to_mem(json.dumps(cfg), "config.json"), set_values=set_values)


def test_every_supported_type_has_published_configs() -> None:
    per_type = Counter(fields(p)["model_type"] for p in CONFIGS)
    assert sorted(per_type) == supported_model_types()
    assert {t for t, n in per_type.items() if n < 2} == SINGLE_CONFIG, per_type
    for p in CONFIGS:
        assert "huggingface.co" in json.loads(p.read_text())["_source"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_total_equals_transformers(path: Path) -> None:
    cfg = fields(path)
    expected = hf_total(hf_model(cfg))
    if cfg["model_type"] == "t5" and cfg.get("tie_word_embeddings") is False:
        # transformers 5.x's T5Config forces tie_word_embeddings = True (it keeps the
        # file's value only as scale_decoder_outputs), so from_config ties lm_head to
        # the shared embedding.  The released T5 v1.1 / Flan-T5 checkpoints store a
        # separate lm_head.weight (vocab_size x d_model): symmem counts it.
        expected += cfg["vocab_size"] * cfg["d_model"]
    assert symmem_model(cfg).params().total.evaluate() == expected


def _moe_active(model: Any, top_k: int) -> int:
    """Active parameters per token from the module tree: each routed-expert tensor
    (transformers 5.x stores the E experts of a layer as one [E, ...] tensor in a
    ``*Experts`` module) counts top_k / E of its size; everything else counts fully."""
    total = hf_total(model)
    inactive = 0
    for name, module in model.named_modules():
        if name.endswith(".experts") and type(module).__name__.endswith("Experts"):
            for p in module.parameters(recurse=False):
                n_experts = p.shape[0]
                inactive += p.numel() // n_experts * (n_experts - top_k)
    assert inactive > 0
    return total - inactive


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if fields(p)["model_type"] in MOE_TYPES], ids=lambda p: p.stem
)
def test_moe_active_parameters_match_module_tree(path: Path) -> None:
    cfg = fields(path)
    model = hf_model(cfg)
    active = symmem_model(cfg).params(active_embeddings="count").active.evaluate()
    assert active == _moe_active(model, cfg["num_experts_per_tok"])


@pytest.mark.parametrize(
    ("stem", "layers"),
    [
        ("deepseek-v3", 5),
        ("qwen3-235b-a22b", 3),
        ("gemma-2-9b", 6),
        ("llama-3.1-8b", 2),
        ("t5-small", 3),
    ],
)
def test_layer_count_is_symbolic(stem: str, layers: int) -> None:
    """symmem's file at --set <layer count>=L equals transformers built with L layers."""
    cfg = fields(DATA / f"{stem}.json")
    key = "num_layers" if cfg["model_type"] == "t5" else "num_hidden_layers"
    small = {**cfg, key: layers}
    if cfg["model_type"] == "t5":
        small["num_decoder_layers"] = layers
        got = symmem_model(cfg, num_layers=layers, num_decoder_layers=layers)
    else:
        got = symmem_model(cfg, **{key: layers})
    assert got.params().total.evaluate() == hf_total(hf_model(small))


def test_deepseek_v3_published_totals() -> None:
    """DeepSeek-V3 paper (arXiv:2412.19437): 671B total; the checkpoint (685B) adds the
    14B MTP module.  transformers builds no MTP layer; symmem's mtp_layers = 1 adds one
    (its embedding and head shared with the main model, section 2.2)."""
    cfg = fields(DATA / "deepseek-v3.json")
    base = symmem_model(cfg).params().total.evaluate()
    assert round(base / 1e9) == 671
    with_mtp = symmem_model(cfg, mtp_layers=1).params().total.evaluate()
    assert 11e9 < with_mtp - base < 12.5e9  # one MoE layer (~11.9B) + 2 d^2 + 3 d


def test_deepseek_moe_layer_freq_follows_the_reference_code() -> None:
    # transformers ignores moe_layer_freq; DeepSeek's reference modeling_deepseek.py makes layer i
    # MoE iff i >= first_k_dense_replace and i % moe_layer_freq == 0 (docs/import.md).  At 4 layers,
    # first_k = 1, freq = 2: layers 0, 1, 3 dense, layer 2 MoE.  From two transformers models with
    # all-dense (A = E + 4D) and all-MoE (B = E + 4M) stacks: E + 3D + M = (3A + B) / 4.
    cfg = {**fields(DATA / "deepseek-v2-lite.json"), "num_hidden_layers": 4}
    dense = hf_total(hf_model({**cfg, "first_k_dense_replace": 4}))
    moe = hf_total(hf_model({**cfg, "first_k_dense_replace": 0}))
    assert (3 * dense + moe) % 4 == 0
    got = (
        symmem_model({**cfg, "first_k_dense_replace": 1, "moe_layer_freq": 2})
        .params()
        .total.evaluate()
    )
    assert got == (3 * dense + moe) // 4


#: Architecture options each family's config can switch on, applied to a published
#: config (at 3 or 4 layers, for speed): symmem must still equal transformers.
OPTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "bert-base-uncased",
        {"type_vocab_size": 1, "max_position_embeddings": 1024, "hidden_act": "relu"},
    ),
    ("gpt2", {"n_inner": 1000, "tie_word_embeddings": False, "activation_function": "relu"}),
    (
        "pythia-160m",
        {"use_parallel_residual": False, "attention_bias": False, "tie_word_embeddings": True},
    ),
    ("opt-125m", {"enable_bias": False, "layer_norm_elementwise_affine": False}),
    (
        "opt-125m",
        {
            "_remove_final_layer_norm": True,
            "word_embed_proj_dim": 256,
            "tie_word_embeddings": False,
        },
    ),
    (
        "llama-7b",
        {"attention_bias": True, "mlp_bias": True, "head_dim": 96, "num_key_value_heads": 4},
    ),
    ("mistral-7b-v0.1", {"num_key_value_heads": 1, "head_dim": 64, "tie_word_embeddings": True}),
    ("mixtral-8x7b-v0.1", {"num_local_experts": 4, "num_experts_per_tok": 1, "head_dim": 64}),
    ("qwen2-7b", {"use_sliding_window": True, "max_window_layers": 2, "tie_word_embeddings": True}),
    ("qwen1.5-moe-a2.7b", {"decoder_sparse_step": 2, "mlp_only_layers": [3], "qkv_bias": False}),
    ("qwen1.5-moe-a2.7b", {"shared_expert_intermediate_size": 0}),
    ("qwen3-8b", {"attention_bias": True, "head_dim": 64}),
    ("qwen3-30b-a3b", {"mlp_only_layers": [0, 1], "decoder_sparse_step": 1}),
    ("gemma-7b", {"attention_bias": True, "head_dim": 128, "tie_word_embeddings": False}),
    ("gemma-2-2b", {"attention_bias": True, "sliding_window": None}),
    ("phi-3-mini-4k-instruct", {"num_key_value_heads": 8, "tie_word_embeddings": True}),
    ("falcon-40b", {"num_ln_in_parallel_attn": 1}),
    ("falcon-7b", {"bias": True, "ffn_hidden_size": 10000, "tie_word_embeddings": False}),
    ("falcon-7b", {"multi_query": False, "parallel_attn": False}),
    ("t5-small", {"feed_forward_proj": "gated-silu", "num_decoder_layers": 2, "d_kv": 32}),
    (
        "deepseek-v2-lite",
        {"q_lora_rank": 384, "attention_bias": True, "mlp_bias": True, "first_k_dense_replace": 0},
    ),
    ("deepseek-v3", {"q_lora_rank": None, "first_k_dense_replace": 2, "n_shared_experts": 2}),
    ("deepseek-v3", {"n_shared_experts": 0, "first_k_dense_replace": 0}),
    ("mamba-codestral-7b-v0.1", {"n_groups": 1, "use_bias": True, "use_conv_bias": False}),
    ("mamba-codestral-7b-v0.1", {"num_heads": 64, "head_dim": 128, "tie_word_embeddings": True}),
    ("falcon-mamba-7b", {"use_bias": True, "time_step_rank": "auto", "expand": 3}),
    # transformers 5.x keeps a file's intermediate_size over expand x hidden_size
    ("mamba-130m-hf", {"intermediate_size": 1000, "expand": 3}),
    ("mamba-130m-hf", {"expand": 3, "tie_word_embeddings": False}),
    (
        "jamba-v0.1",
        {"attn_layer_period": 2, "attn_layer_offset": 0, "expert_layer_period": 4},
    ),
    ("jamba-v0.1", {"mamba_proj_bias": True, "mamba_conv_bias": False, "mamba_dt_rank": "auto"}),
    (
        "llama-4-scout-17b-16e-instruct-text",
        {"moe_layers": [0, 3], "no_rope_layers": [1, 0, 1, 1], "attention_bias": True},
    ),
    (
        "llama-4-maverick-17b-128e-instruct-text",
        {"attention_chunk_size": None, "num_local_experts": 8, "num_experts_per_tok": 2},
    ),
]


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize(
    ("stem", "change"), OPTIONS, ids=lambda x: x if isinstance(x, str) else ",".join(x)
)
def test_architecture_options_match_transformers(stem: str, change: dict[str, Any]) -> None:
    cfg = fields(DATA / f"{stem}.json")
    key = (
        "num_layers"
        if cfg["model_type"] == "t5"
        else "n_layer"
        if cfg["model_type"] == "gpt2"
        else "num_hidden_layers"
    )
    cfg = {**cfg, key: 4, **change}
    expected = hf_total(hf_model(cfg))
    assert symmem_model(cfg).params().total.evaluate() == expected
