"""config.json -> .mem: the file people read, defaults, errors, and the CLI.

No transformers here: counts that need an oracle are in test_hf_exact.py; the
expected numbers below are hand derivations written beside each test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import ImportHFError
from symmem.hf.importer import config_text_to_mem, supported_model_types

DATA = Path(__file__).parent / "data" / "hf"
CONFIGS = sorted(DATA.glob("*.json"))


def load(stem: str) -> dict[str, Any]:
    return {
        k: v
        for k, v in json.loads((DATA / f"{stem}.json").read_text()).items()
        if not k.startswith("_")
    }


def mem(cfg: dict[str, Any], filename: str = "config.json") -> str:
    return config_text_to_mem(json.dumps(cfg), filename)


def total(cfg: dict[str, Any], **set_values: int) -> int:
    return symmem.parse(mem(cfg), set_values=set_values).params().total.evaluate()


# ---------------------------------------------------------------- the emitted file


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_round_trip_file_is_readable(path: Path) -> None:
    text = config_text_to_mem(path.read_text(), str(path))
    cfg = json.loads(path.read_text())
    first = text.splitlines()[0]
    assert first.startswith(f"# {cfg['model_type']}: imported from {path.name}")
    assert "repeat " in text
    # never unrolled: a handful of block uses, not one per layer
    assert text.count("\n  repeat ") <= 4
    model = symmem.parse(text, filename=path.name)
    assert isinstance(model.params().total.evaluate(), int)


def test_symbols_are_named_after_config_fields() -> None:
    text = mem(load("llama-3.1-8b"))
    for line in (
        "hidden_size = 4096",
        "num_hidden_layers = 32",
        "num_attention_heads = 32",
        "num_key_value_heads = 8",
        "intermediate_size = 14336",
        "vocab_size = 128256",
    ):
        assert re.search(rf"^{re.escape(line)}\b", text, re.M), line
    assert "rope_scaling: llama3" in text  # noted, no parameters


def test_deepseek_dense_then_moe_runs_and_explicit_mtp() -> None:
    text = mem(load("deepseek-v3"))
    assert "repeat first_k_dense_replace dense_layers { dense_layer }" in text
    assert "repeat num_hidden_layers - first_k_dense_replace moe_layers { moe_layer }" in text
    assert re.search(r"^mtp_layers = 0 .*num_nextn_predict_layers = 1", text, re.M)
    assert "n_group = 8, topk_group = 4" in text
    # moving a layer from MoE to dense changes the count by (dense MLP - MoE block);
    # hand derivation, d = 7168: dense gated MLP 3*d*18432 = 396,361,728; MoE block:
    # router 256*d + 256 experts * 3*d*2048 + shared 3*d*2048 = 1,835,008 + 11,274,289,152
    # + 44,040,192 = 11,320,164,352.
    cfg = load("deepseek-v3")
    assert total(cfg, first_k_dense_replace=4) - total(cfg) == 396_361_728 - 11_320_164_352


def test_mtp_module_counts_one_moe_layer_plus_projection() -> None:
    # DeepSeek-V3 section 2.2: an MTP module = RMSNorm x 2 + Linear(2d, d) + one
    # transformer block + (shared head) RMSNorm.  Hand derivation for DeepSeek-V3,
    # d = 7168: norms 3d = 21,504; projection 2 d^2 = 102,760,448; MoE layer =
    # MLA (q_a 1536d + 1536 + q_b 1536*128*192 + kv_a 576d + 512 + kv_b 512*128*256
    # + o 128*128*d = 187,107,328) + MoE block 11,320,164,352 + 2 layer norms 2d.
    cfg = load("deepseek-v3")
    d = 7168
    mla = 1536 * d + 1536 + 1536 * 128 * 192 + 576 * d + 512 + 512 * 128 * 256 + 128 * 128 * d
    assert mla == 187_107_328
    layer = mla + 11_320_164_352 + 2 * d
    assert total(cfg, mtp_layers=1) - total(cfg) == 3 * d + 2 * d * d + layer


def test_alternating_sliding_window_is_one_period() -> None:
    text = mem(load("gemma-2-9b"))
    assert (
        "repeat num_hidden_layers / 2 layers { decoder_layer_sliding; decoder_layer_full }" in text
    )
    assert "window = sliding_window" in text


def test_sparse_step_and_mlp_only_layers_group_consecutive_layers() -> None:
    cfg = {**load("qwen1.5-moe-a2.7b"), "num_hidden_layers": 8, "decoder_sparse_step": 2}
    assert "repeat num_hidden_layers / 2 layers { dense_layer; moe_layer }" in mem(cfg)
    cfg = {**load("qwen3-30b-a3b"), "num_hidden_layers": 6, "mlp_only_layers": [0, 1, 5]}
    text = mem(cfg)
    assert "repeat 2 { dense_layer }  # layers 0-1" in text
    assert "repeat 3 { moe_layer }  # layers 2-4" in text
    assert "repeat 1 { dense_layer }  # layer 5" in text


def test_parallel_attention_families() -> None:
    # x + attn(ln1(x)) + mlp(ln2(x)): each branch with its own LayerNorm
    assert "parallel {\n      layernorm input_layernorm" in mem(load("pythia-160m"))
    assert "parallel {\n      layernorm ln_attn" in mem(load("falcon-40b"))
    # falcon-7b: one LayerNorm before both branches, multi-query attention
    falcon7 = mem(load("falcon-7b"))
    assert "layernorm input_layernorm(hidden_size)\n    parallel {\n      attention" in falcon7
    assert "kv_heads = 1" in falcon7


# ---------------------------------------------------------------- defaults and options


def test_absent_fields_take_the_config_class_defaults() -> None:
    # Qwen3Config.head_dim defaults to 128 (not hidden_size / heads = 64 for the 0.6B).
    cfg = load("qwen3-0.6b")
    without = {k: v for k, v in cfg.items() if k != "head_dim"}
    assert total(without) == total(cfg)
    assert "head_dim = 128" in mem(without)
    # LlamaConfig.tie_word_embeddings defaults to False: an untied head, vocab * d more.
    llama = load("llama-3.2-1b")
    untied = {k: v for k, v in llama.items() if k != "tie_word_embeddings"}
    assert total(untied) - total(llama) == 128256 * 2048
    assert "tie_word_embeddings = false" in mem(untied)


def test_head_dim_different_from_hidden_over_heads() -> None:
    # Mistral-NeMo: head_dim 128 while 5120 / 32 = 160.  Attention per layer is
    # q 5120*32*128 + k, v 2 * 5120*8*128 + o 32*128*5120 = 52,428,800 (not 65,536,000).
    cfg = load("mistral-nemo-base-2407")
    derived = {k: v for k, v in cfg.items() if k != "head_dim"}
    per_layer = (
        5120 * 32 * 160 * 2 + 2 * 5120 * 8 * 160 - (5120 * 32 * 128 * 2 + 2 * 5120 * 8 * 128)
    )
    assert total(derived) - total(cfg) == 40 * per_layer


def test_attention_and_mlp_bias() -> None:
    # attention_bias adds q, k, v, o biases: 4096 + 1024 + 1024 + 4096 = 10,240 per layer;
    # mlp_bias adds 14336 * 2 + 4096 = 32,768 per layer (Llama-3.1-8B, 32 layers).
    cfg = load("llama-3.1-8b")
    assert total({**cfg, "attention_bias": True}) - total(cfg) == 32 * 10_240
    assert total({**cfg, "mlp_bias": True}) - total(cfg) == 32 * 32_768


def test_rope_scaling_changes_no_count() -> None:
    cfg = load("llama-3.1-8b")
    plain = {k: v for k, v in cfg.items() if k != "rope_scaling"}
    assert total(plain) == total(cfg) == 8_030_261_248  # Llama 3.1 8B, as transformers counts it


# ---------------------------------------------------------------- errors


def test_unknown_model_type_lists_supported_ones() -> None:
    with pytest.raises(ImportHFError) as err:
        mem({"model_type": "rwkv", "hidden_size": 8})
    msg = str(err.value)
    assert "'rwkv' is not supported" in msg
    for name in supported_model_types():
        assert name in msg


def test_missing_model_type() -> None:
    with pytest.raises(ImportHFError, match="no 'model_type' field"):
        mem({"hidden_size": 8})


@pytest.mark.parametrize(
    "field", ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"]
)
def test_missing_required_field_is_named(field: str) -> None:
    cfg = {k: v for k, v in load("llama-7b").items() if k != field}
    with pytest.raises(ImportHFError, match=f"no '{field}' field"):
        mem(cfg)


@pytest.mark.parametrize(
    ("stem", "change", "match"),
    [
        (
            "bert-base-uncased",
            {"position_embedding_type": "relative_key"},
            "position_embedding_type",
        ),
        ("gpt2", {"add_cross_attention": True}, "add_cross_attention"),
        ("t5-small", {"feed_forward_proj": "gated-relu-extra"}, "feed_forward_proj"),
        ("llama-7b", {"hidden_act": "sparse_relu2"}, "hidden_act"),
        ("llama-7b", {"num_key_value_heads": 5}, "num_key_value_heads"),
        ("llama-7b", {"hidden_size": 4096.5}, "hidden_size"),
        ("gemma-2-2b", {"layer_types": ["chunked_attention"] * 26}, "layer_types"),
    ],
)
def test_values_symmem_cannot_model_are_errors(
    stem: str, change: dict[str, Any], match: str
) -> None:
    with pytest.raises(ImportHFError, match=match):
        mem({**load(stem), **change})


def test_invalid_json_is_an_error() -> None:
    with pytest.raises(ImportHFError, match="not valid JSON"):
        config_text_to_mem("{ 'model_type': }", "bad.json")


# ---------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_import_hf_prints_and_writes(tmp_path: Path) -> None:
    src = DATA / "qwen2.5-0.5b.json"
    res = runner.invoke(app, ["import-hf", str(src)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("# qwen2: imported from qwen2.5-0.5b.json")
    out = tmp_path / "model.mem"
    res = runner.invoke(app, ["import-hf", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == config_text_to_mem(src.read_text(), str(src))
    assert [p.name for p in tmp_path.iterdir()] == ["model.mem"]  # no temp file left behind
    # Qwen2.5-0.5B, tied: 494,032,768 (the published 0.49B; also test_hf_exact)
    assert symmem.load(out).params().total.evaluate() == symmem.load(src).params().total.evaluate()


def test_cli_import_hf_accepts_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((DATA / "gpt2.json").read_text())
    res = runner.invoke(app, ["import-hf", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("# gpt2: imported from config.json")


def test_cli_import_hf_output_to_a_directory_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    res = runner.invoke(app, ["import-hf", str(DATA / "gpt2.json"), "-o", str(out)])
    assert res.exit_code == 1 and "is a directory" in res.output
    assert list(tmp_path.iterdir()) == [out] and list(out.iterdir()) == []  # no temporary file left


def test_cli_params_reads_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((DATA / "gpt2.json").read_text())
    res = runner.invoke(app, ["params", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "124,439,808" in res.stdout  # GPT-2 small, as transformers' GPT2LMHeadModel


def test_cli_params_reads_config_json_directly() -> None:
    res = runner.invoke(app, ["params", str(DATA / "gpt2.json")])
    assert res.exit_code == 0, res.output
    assert "124,439,808" in res.stdout  # GPT-2 small, as transformers' GPT2LMHeadModel


def test_cli_errors_exit_1_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "rwkv"}))
    for args in (
        ["import-hf", str(bad)],
        ["params", str(bad)],
        ["import-hf", str(tmp_path / "missing.json")],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 1
        assert "Traceback" not in res.output


def test_cli_error_in_an_imported_config_names_the_generated_text(tmp_path: Path) -> None:
    # line:column of a semantic error point into the generated .mem, not into the JSON: say so
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({**load("mixtral-8x7b-v0.1"), "num_experts_per_tok": 20}))
    res = runner.invoke(app, ["params", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.startswith(f"{bad} (as imported .mem):")
    assert "top_k = 20 is larger than n_experts = 8" in res.output


def test_cli_bundled_name_with_mem_suffix_gets_a_hint() -> None:
    res = runner.invoke(app, ["params", "gpt2.mem"])
    assert res.exit_code == 1 and "named without .mem: gpt2" in res.output


def test_cli_zoo_lists_bundled_models() -> None:
    res = runner.invoke(app, ["zoo"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("gpt2 "))
    assert "124,439,808" in line
    # examples/seed_formulas.mem defines dense, conv2d, lstm_keras and lstm_pytorch: no single count
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("seed_formulas "))
    assert "4 models (--model)" in line


# ---------------------------------------------------------------- published figures

#: (config, total, active per token or None, source).  Rounded as published; active
#: counts use the imported file's own active_embeddings convention (DeepSeek-V3 and
#: Kimi-K2 exclude the embedding, as DeepSeek's 37B does).  These catch a wrongly
#: transcribed config value, which the transformers comparison cannot.
PUBLISHED = [
    ("deepseek-v3", "671B", "37B", "DeepSeek-V3 report (arXiv:2412.19437), abstract"),
    ("deepseek-v2", "236B", "21B", "DeepSeek-V2 report (arXiv:2405.04434), abstract"),
    ("deepseek-v2-lite", "15.7B", None, "DeepSeek-V2-Lite model card: 15.7B total"),
    (
        "mixtral-8x7b-v0.1",
        "46.7B",
        "12.9B",
        "Mistral AI, 'Mixtral of experts' (2023): 46.7B total, 12.9B per token",
    ),
    (
        "mixtral-8x22b-v0.1",
        "141B",
        "39B",
        "Mistral AI, 'Cheaper, Better, Faster, Stronger' (2024): 141B / 39B active",
    ),
    # the model card's "3.3B activated" is 3.35B truncated; the Qwen3 report (Table 2) says 3B
    (
        "qwen3-30b-a3b",
        "30.5B",
        "3B",
        "Qwen3-30B-A3B model card: 30.5B total; Qwen3 report Table 2: 3B activated",
    ),
    ("qwen3-235b-a22b", "235B", "22B", "Qwen3-235B-A22B model card: 235B total, 22B activated"),
    (
        "qwen1.5-moe-a2.7b",
        "14.3B",
        "2.7B",
        "Qwen blog 'Qwen1.5-MoE' (2024): 14.3B total, 2.7B activated",
    ),
    ("qwen2-57b-a14b", "57B", "14B", "Qwen2 technical report Table 1: 57B total, 14B activated"),
    ("kimi-k2-instruct", "1T", "32B", "Kimi K2 model card: 1 trillion total, 32 billion activated"),
]


def _billions(text: str) -> tuple[float, int]:
    """'14.3B' -> (14.3e9, 1 decimal); '1T' -> (1e12, 0)."""
    scale = 1e12 if text.endswith("T") else 1e9
    num = text[:-1]
    return float(num) * scale, len(num.partition(".")[2])


@pytest.mark.parametrize(
    ("stem", "total_text", "active_text", "source"), PUBLISHED, ids=lambda x: str(x)[:20]
)
def test_published_totals(stem: str, total_text: str, active_text: str | None, source: str) -> None:
    result = symmem.parse(mem(load(stem))).params()
    value, digits = _billions(total_text)
    scale = 1e12 if total_text.endswith("T") else 1e9
    assert round(result.total.evaluate() / scale, digits) == round(value / scale, digits), source
    if active_text:
        value, digits = _billions(active_text)
        assert round(result.active.evaluate() / 1e9, digits) == round(value / 1e9, digits), source


@pytest.mark.parametrize(
    ("stem", "non_embedding"), [("gemma-2b", 1_981_884_416), ("gemma-7b", 7_751_248_896)]
)
def test_gemma_non_embedding_counts_from_the_report(stem: str, non_embedding: int) -> None:
    # Gemma report (Gemma Team 2024), Table 2: non-embedding parameters of the 2B and 7B
    # models.  The HF configs tie the head to a 256,000-row embedding.
    cfg = load(stem)
    assert total(cfg) - cfg["vocab_size"] * cfg["hidden_size"] == non_embedding
