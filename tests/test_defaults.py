"""Defaults from the model (issue 10): the declared dtype and quantization, the values stated
with their sources, budgets with units, and the remedies people try.

Each figure is checked against a hand count written beside it (bytes of the tensors a
format's code allocates) or against the same build with the options spelled out."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import sympy
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import OptionError
from symmem.hf.config import HFConfig
from symmem.hf.quantization import declarations
from symmem.memory import MemoryEvaluator, build
from symmem.options import MemoryOptions
from symmem.quant import QUANTS
from symmem.remedies import remedies, smallest_degree
from symmem.solve import solve
from symmem.units import parse_budget

runner = CliRunner()
HF = Path(__file__).parent / "data" / "hf"
AWQ = str(HF / "llama-3.1-8b-instruct-awq-int4.json")

# Llama-3.1-8B by hand: embedding and head 128256 x 4096 each; 65 RMSNorm weights of 4096;
# per layer q, o 4096^2, k, v 1024 x 4096, gate, up 14336 x 4096, down 4096 x 14336
EMB = 128256 * 4096
NORMS = 65 * 4096
LINEAR = 32 * (2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096)
PARAMS = 8_030_261_248


def ok(*args: str) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.output


def test_hand_count_of_llama() -> None:
    assert 2 * EMB + NORMS + LINEAR == PARAMS


# ---------------------------------------------------------------- acceptance
def test_llama_infers_in_its_bf16_with_no_option() -> None:
    """16,060,522,496 = 8,030,261,248 x 2 bytes: the published bf16 weights."""
    doc = json.loads(ok("memory", "llama3.1-8b", "--mode", "infer", "--json"))
    assert doc["bytes"]["weights"] == 16_060_522_496 == PARAMS * 2
    assert doc["config"]["weight_dtype"] == "bf16"
    assert doc["config"]["assumed"]["precision"]["value"] == "bf16"
    assert "dtype = bf16" in doc["config"]["assumed"]["precision"]["source"]
    # every value stated, batch and seq_len first, each with its source
    assert list(doc["values"])[:2] == ["batch", "seq_len"]
    assert doc["values"]["batch"] == {"value": 1, "source": "default in llama3.1-8b.mem"}
    assert doc["values"]["seq_len"]["value"] == 8192
    # one type per option value
    assert doc["config"]["tp"] == 1 and doc["config"]["zero"] == 0


def test_values_say_which_option_gave_them() -> None:
    doc = json.loads(
        ok("memory", "gpt2", "--batch", "2", "--set", "seq_len=128", "--json", "--mode", "infer")
    )
    assert doc["values"]["batch"] == {"value": 2, "source": "--batch"}
    assert doc["values"]["seq_len"] == {"value": 128, "source": "--set"}
    out = ok("memory", "gpt2", "--seq-len", "64")
    assert "seq_len = 64 (--seq-len)" in out and "batch = 8 (default in gpt2.mem)" in out
    r = runner.invoke(app, ["memory", "gpt2", "--batch", "2", "--set", "batch=3"])
    assert r.exit_code == 1 and "give it once" in r.output


@pytest.mark.parametrize("command", ["params", "memory", "solve", "show", "diff", "latex"])
def test_batch_and_seq_len_on_every_command(command: str) -> None:
    r = runner.invoke(app, [command, "--help"])
    assert "--batch" in r.output and "--seq-len" in r.output


def test_a_budget_needs_a_unit() -> None:
    r = runner.invoke(app, ["solve", "--budget", "24", "gpt2"])
    assert r.exit_code == 1
    assert "no unit" in r.output and "24GB" in r.output and "24GiB" in r.output
    assert "--gpu" in r.output and "Traceback" not in r.output
    assert parse_budget("24B") == 24 and parse_budget(24) == 24  # bytes said, or a Python int


def test_a_decimal_budget_equal_to_a_cards_marketed_size_says_so() -> None:
    out = ok("solve", "gpt2", "--budget", "80GB", "--mode", "infer")
    assert "80GB here is 80,000,000,000 bytes" in out and "--gpu" in out
    assert "note:" not in ok("solve", "gpt2", "--budget", "81GB", "--mode", "infer")


def test_awq_config_gives_autoawq_packing() -> None:
    """hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 (quant_method awq, 4-bit, group
    128, torch_dtype float16).  AutoAWQ's WQLinear_GEMM (awq/modules/linear/gemm.py) of an
    out x in matrix holds qweight int32 [in, out/8], qzeros int32 [in/128, out/8] and scales
    fp16 [in/128, out]: in*out/2 + (in/128)*(out/8)*4 + (in/128)*out*2 bytes, 4 + 20/128 =
    4.15625 bits a weight.  Embedding, head and norms stay fp16."""

    def wq(out_f: int, in_f: int) -> int:
        return in_f * out_f // 8 * 4 + in_f // 128 * out_f // 8 * 4 + in_f // 128 * out_f * 2

    layer = 2 * wq(4096, 4096) + 2 * wq(1024, 4096) + 2 * wq(14336, 4096) + wq(4096, 14336)
    expected = 32 * layer + (2 * EMB + NORMS) * 2
    assert sympy.Rational(32 * layer * 8, LINEAR) == sympy.Rational(133, 32)  # 4.15625 bits
    doc = json.loads(ok("memory", AWQ, "--mode", "infer", "--json"))
    assert doc["bytes"]["weights"] == expected == 5_727_854_592
    assert doc["config"]["quant"] == "awq" and doc["config"]["weight_dtype"] == "fp16"
    # --quant none: the 16-bit weights
    doc = json.loads(ok("memory", AWQ, "--mode", "infer", "--quant", "none", "--json"))
    assert doc["bytes"]["weights"] == PARAMS * 2


# ---------------------------------------------------------------- the defaults
DECLARED = "model m(input = [batch, seq_len, 64]{}) {{ linear a(64, 64); linear b(64, 8) }}"


def model(header: str = "") -> symmem.Model:
    return symmem.parse(DECLARED.format(header))


@pytest.mark.parametrize(
    ("header", "mode", "explicit"),
    [
        ("", "infer", {"precision": "fp16"}),
        ("", "train", {"precision": "fp32"}),
        (", dtype = fp32", "infer", {"precision": "fp32"}),
        (", dtype = fp32", "train", {"precision": "fp32"}),
        (", dtype = bf16", "infer", {"precision": "bf16"}),
        (", dtype = bf16", "train", {"precision": "mixed-bf16", "optimizer": "adamw"}),
        (", dtype = fp16", "train", {"precision": "mixed-fp16"}),
        (', dtype = bf16, quantization = "awq"', "infer", {"precision": "bf16", "quant": "awq"}),
        (', dtype = bf16, quantization = "awq"', "train", {"precision": "mixed-bf16"}),
        (
            ', dtype = bf16, quantization = "gptq", group_size = 32',
            "infer",
            {"precision": "bf16", "quant": "gptq", "group_size": 32},
        ),
    ],
)
def test_defaults_equal_the_options_spelled_out(header: str, mode: str, explicit: dict) -> None:
    m = model(header)
    implied = m.memory(mode)
    spelled = m.memory(mode, **explicit)
    assert implied.bytes() == spelled.bytes()
    assert implied.config.assumed and "precision" in dict(
        (o, v) for o, v, _ in implied.config.assumed
    )


def test_a_quantized_checkpoint_is_trained_through_lora_only() -> None:
    m = model(', dtype = bf16, quantization = "nf4", double_quant = true')
    full = m.memory("train")
    assert full.config.quant is None
    assert any(o == "quant" and v == "none" for o, v, _ in full.config.assumed)
    lora = m.memory("train", lora_rank=4, lora_targets="a")
    assert lora.config.quant == "nf4" and lora.config.double_quant
    assert (
        lora.bytes()
        == m.memory(
            "train",
            lora_rank=4,
            lora_targets="a",
            quant="nf4",
            double_quant=True,
            precision="mixed-bf16",
        ).bytes()
    )


def test_seed_figures_stay_reproducible_with_explicit_options() -> None:
    """BERT-base declares fp32 (its published weights), so its seed figures (fp32 Adam) are
    its defaults too; spelled out they are the same."""
    m = symmem.load("bert-base")
    assert m.memory("train").bytes() == m.memory("train", precision="fp32").bytes()
    assert m.memory("train").weights.evaluate() == 437_928_960


def test_header_declarations_are_checked() -> None:
    with pytest.raises(symmem.SymmemError, match="dtype must be one of"):
        model(", dtype = fp64")
    with pytest.raises(symmem.SymmemError, match="quantization must be one of"):
        model(', quantization = "int3"')
    with pytest.raises(symmem.SymmemError, match="group_size is the quantization"):
        model(", group_size = 64")
    with pytest.raises(symmem.SymmemError, match="whole number"):
        model(', quantization = "awq", group_size = 0')


def test_fast_evaluator_follows_the_model_defaults() -> None:
    m = symmem.load("deepseek-v3")
    ev = MemoryEvaluator(m.graph, m.values)
    for mode in ("infer", "train"):
        assert ev.bytes(mode=mode) == build(m.graph, m.values, MemoryOptions(mode=mode)).bytes()


# ---------------------------------------------------------------- the formats
@pytest.mark.parametrize(
    ("name", "hand"),
    [
        # AutoGPTQ QuantLinear: qweight int32 [in/8, out], qzeros int32 [in/g, out/8],
        # scales fp16 [in/g, out], g_idx int32 [in]
        ("gptq", lambda o, i: i * o // 2 + i // 128 * o // 8 * 4 + i // 128 * o * 2 + 4 * i),
        ("gptq-int8", lambda o, i: i * o + i // 128 * o // 4 * 4 + i // 128 * o * 2 + 4 * i),
        # compressed-tensors pack-quantized: weight_packed int32 [out, in/8], weight_scale
        # bf16 [out, in/128], weight_shape int64 [2]
        ("w4a16", lambda o, i: o * i // 8 * 4 + o * (i // 128) * 2 + 16),
        # int8 / fp8 channel: [out, in] 1 byte + weight_scale bf16 [out, 1]
        ("int8-channel", lambda o, i: o * i + 2 * o),
        ("fp8-channel", lambda o, i: o * i + 2 * o),
        # FbgemmFp8Linear: weight fp8 [out, in], weight_scale fp32 [out, 1], input_scale_ub [1]
        ("fbgemm-fp8", lambda o, i: o * i + 4 * o + 4),
        # DeepSeek-V3: weight fp8 [out, in], weight_scale_inv fp32 [ceil(out/128), ceil(in/128)]
        ("fp8-block", lambda o, i: o * i + 4 * math.ceil(o / 128) * math.ceil(i / 128)),
        # gpt-oss MXFP4: *_blocks uint8 [out, in/32, 16], *_scales uint8 [out, in/32]
        ("mxfp4", lambda o, i: o * (i // 32) * 16 + o * (i // 32)),
        # NVFP4: packed uint8 [out, in/2], fp8 scales [out, in/16], fp32 global scale
        ("nvfp4", lambda o, i: o * i // 2 + o * (i // 16) + 4),
    ],
)
def test_each_format_against_its_tensors(name: str, hand: object) -> None:
    q = QUANTS[name]
    for out_f, in_f in ((4096, 4096), (576, 7168), (14336, 4096)):
        assert q.matrix_bytes(sympy.Integer(out_f), sympy.Integer(in_f)) == hand(out_f, in_f)  # type: ignore[operator]


def test_deepseek_v3_fp8_checkpoint() -> None:
    """The bundled DeepSeek-V3 declares its FP8 release: linear matrices in fp8 with one fp32
    scale per 128 x 128 block (41,546,768 scales with the MTP layer, tests/
    test_examples_transformers.py; the main model's without it, below); embedding, head,
    norms, routers and router biases in bf16."""
    d = 7168

    def blocks(o: int, i: int) -> int:
        return math.ceil(o / 128) * math.ceil(i / 128)

    mla = (
        blocks(1536, d)
        + blocks(128 * 192, 1536)
        + blocks(576, d)
        + blocks(128 * 256, 512)
        + blocks(d, 128 * 128)
    )
    dense = 2 * blocks(18432, d) + blocks(d, 18432)
    moe = 257 * (2 * blocks(2048, d) + blocks(d, 2048))
    scales = 3 * (mla + dense) + 58 * (mla + moe)
    emb = 129280 * d
    norms = 61 * (2 * d + 1536 + 512) + d
    routers = 58 * 256 * d
    router_bias = 58 * 256
    quantized = 671_026_404_352 - 2 * emb - norms - routers
    expected = quantized + 4 * scales + 2 * (2 * emb + norms + routers + router_bias)
    weights = symmem.load("deepseek-v3").memory("infer").weights.evaluate()
    assert weights == expected


# ---------------------------------------------------------------- Hugging Face import
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {
                "quant_method": "awq",
                "bits": 4,
                "group_size": 64,
                "version": "gemm",
                "zero_point": True,
            },
            ['quantization = "awq"', "group_size = 64"],
        ),
        (
            {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False},
            ['quantization = "gptq"', "group_size = 128"],
        ),
        (
            {"quant_method": "gptq", "bits": 8, "group_size": 128},
            ['quantization = "gptq-int8"', "group_size = 128"],
        ),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, ['quantization = "int8"']),
        (
            {
                "quant_method": "bitsandbytes",
                "load_in_4bit": True,
                "bnb_4bit_quant_type": "nf4",
                "bnb_4bit_use_double_quant": True,
            },
            ['quantization = "nf4"', "double_quant = true"],
        ),
        ({"quant_method": "fbgemm_fp8"}, ['quantization = "fbgemm-fp8"']),
        (
            {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]},
            ['quantization = "fp8-block"'],
        ),
        ({"quant_method": "mxfp4"}, ['quantization = "mxfp4"']),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "float-quantized",
                "config_groups": {
                    "group_0": {
                        "targets": ["Linear"],
                        "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                    }
                },
            },
            ['quantization = "fp8-channel"'],
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "int-quantized",
                "config_groups": {
                    "group_0": {"weights": {"num_bits": 8, "type": "int", "strategy": "channel"}}
                },
            },
            ['quantization = "int8-channel"'],
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {
                    "group_0": {
                        "weights": {
                            "num_bits": 4,
                            "type": "int",
                            "strategy": "group",
                            "group_size": 128,
                            "symmetric": True,
                        }
                    }
                },
            },
            ['quantization = "w4a16"', "group_size = 128"],
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "nvfp4-pack-quantized",
                "config_groups": {
                    "group_0": {
                        "weights": {
                            "num_bits": 4,
                            "type": "float",
                            "strategy": "tensor_group",
                            "group_size": 16,
                        }
                    }
                },
            },
            ['quantization = "nvfp4"'],
        ),
        ({"quant_method": "hqq"}, []),
        ({"quant_method": "gptq", "bits": 3, "group_size": 128}, []),
    ],
)
def test_quantization_config_becomes_the_header(config: dict, expected: list[str]) -> None:
    opts, notes = declarations(
        HFConfig({"torch_dtype": "bfloat16", "quantization_config": config}, "c.json")
    )
    assert opts == ["dtype = bf16", *expected]
    assert any("quantization_config" in n for n in notes)


def test_imported_dtype_and_positions() -> None:
    text = ok("import-hf", str(HF / "llama-3.1-8b.json"))
    assert "dtype = bf16" in text and "max_positions = 131072" in text
    m = symmem.load(str(HF / "llama-3.1-8b.json"))
    assert m.memory("infer").weights.evaluate() == PARAMS * 2
    ds = symmem.load(str(HF / "deepseek-v3.json"))
    assert ds.memory("infer").config.quant == "fp8-block"


# ---------------------------------------------------------------- warnings
def test_warnings() -> None:
    notes = symmem.load("gpt2", set_values={"seq_len": 2048}).memory("train", zero=3).notes
    assert any("zero = 3 with dp = 1 shards nothing" in n for n in notes)
    assert any("beyond the learned position table wpe" in n for n in notes)
    notes = symmem.load("llama3.1-8b", set_values={"seq_len": 200_000}).memory("infer").notes
    assert any("max_positions" in n for n in notes)
    out = ok("solve", "gpt2", "--budget", "24GB", "--set", "batch=8")
    assert "--set batch=8 is not used" in out


# ---------------------------------------------------------------- remedies and GPU counts
def test_remedies_cheapest_first_each_fits() -> None:
    """An 8B full fine-tune on a 24 GiB card at seq 2048: each change listed fits alone."""
    m = symmem.load("llama3.1-8b", free=["batch"], set_values={"seq_len": 2048})
    budget = 24 * 2**30
    fixes = remedies(m, budget, "batch", mode="train")
    order = ["checkpointing", "8-bit optimizer", "LoRA", "QLoRA", "FSDP", "tp="]
    ranks = [next(i for i, o in enumerate(order) if f.change.startswith(o)) for f in fixes]
    assert ranks == sorted(ranks) and any(f.change.startswith("QLoRA") for f in fixes)
    for fix in fixes:
        total = m.memory("train", **fix.options).total
        v = fix.result.value
        assert v is not None and total.evaluate(batch=v) <= budget < total.evaluate(batch=v + 1)
    assert not any(f.stacked for f in fixes)  # one change is enough: nothing stacked


def test_remedies_stack_when_nothing_alone_fits() -> None:
    m = symmem.load("llama3.1-8b", free=["batch"])  # seq 8192: nothing alone fits 24 GiB
    fixes = remedies(m, 24 * 2**30, "batch", mode="train")
    assert fixes and fixes[0].stacked
    total = m.memory("train", **fixes[0].options).total
    assert total.evaluate(batch=1) <= 24 * 2**30


@pytest.mark.parametrize("option", ["tp", "dp", "pp"])
def test_smallest_degree_is_the_fewest_that_fit(option: str) -> None:
    m = symmem.load("llama3.1-8b", set_values={"seq_len": 1024})
    opts: dict[str, Any] = {"checkpointing": "full"}
    budget = 24 * 2**30
    found = smallest_degree(m, budget, option, options=opts)
    assert found.value is not None and found.value > 1
    extra = {**opts, **found.implied}
    at: dict[str, Any] = {**extra, option: found.value}
    assert m.memory("train", **at).total.evaluate() <= budget
    for smaller in range(1, found.value):
        try:
            total = m.memory("train", **{**extra, option: smaller}).total.evaluate()
        except OptionError:
            continue
        assert total > budget
    out = ok(
        "solve",
        "llama3.1-8b",
        "--seq-len",
        "1024",
        "--checkpointing",
        "full",
        "--budget",
        "24GiB",
        "--for",
        option,
    )
    assert f"{option} = {found.value}" in out


def test_dtypes_table_sums_the_components() -> None:
    """accelerate takes max(model, gradients, optimizer, step): 8 bytes a parameter for bf16
    Adam; summed, mixed-precision AdamW is 2 + 2 + 4 + 8 = 16 bytes a parameter."""
    doc = json.loads(ok("memory", "llama3.1-8b", "--dtypes", "--json"))
    rows = {r["format"]: r for r in doc["rows"]}
    assert rows["fp32"]["inference_weights"] == PARAMS * 4
    assert rows["bf16"]["inference_weights"] == PARAMS * 2
    assert rows["bf16"]["training_weights_gradients_optimizer"] == PARAMS * 16
    assert rows["fp32"]["training_weights_gradients_optimizer"] == PARAMS * 16
    # LLM.int8(): int8 weights, one fp32 scale per output row (q, k, v, o, gate, up, down)
    rows_per_layer = 4096 + 1024 + 1024 + 4096 + 14336 + 14336 + 4096
    int8 = LINEAR + 4 * 32 * rows_per_layer + (2 * EMB + NORMS) * 2
    assert rows["int8"]["inference_weights"] == int8
    assert rows["int8"]["training_weights_gradients_optimizer"] is None


def test_solve_nothing_fits_lists_remedies_with_their_values() -> None:
    doc = json.loads(ok("solve", "llama2-7b", "--budget", "8GB", "--mode", "infer", "--json"))
    assert doc["value"] is None and doc["remedies"]
    assert doc["values"]["seq_len"]["source"] == "default in llama2-7b.mem"
    m = symmem.load("llama2-7b", free=["batch"])
    for fix in doc["remedies"]:
        total = m.memory(mode="infer", **fix["options"]).total
        v = fix["value"]
        assert total.evaluate(batch=v) <= 8 * 10**9 < total.evaluate(batch=v + 1)
    assert solve(m.memory("infer").total, 8 * 10**9, "batch").value is None


def test_a_lora_target_that_matches_nothing_is_an_error() -> None:
    """`--lora-targets dense,c_attn` on a model with only one of them used to drop the other
    silently."""
    m = symmem.load("llama3.1-8b")
    with pytest.raises(OptionError, match="LoRA target dense:"):
        m.memory("train", lora_rank=8, lora_targets="dense,q_proj")
    assert m.memory("train", lora_rank=8, lora_targets="q_proj").weights.evaluate() > 0


def test_no_degree_fits_names_the_largest_the_model_accepts() -> None:
    """Llama-3.1-8B has 32 layers, so pp goes no further than 32 (pp must divide the repeat):
    the message names pp = 32, not the search's limit, and its bytes are the model's at 32."""
    m = symmem.load("llama3.1-8b")
    found = smallest_degree(m, "24GiB", "pp")
    assert found.value is None and found.largest_tried == 32
    assert found.bytes_at_value == m.memory("train", pp=32).total.evaluate()
    out = ok("solve", "llama3.1-8b", "--budget", "24GiB", "--for", "pp")
    assert "no pp fits" in out and "at pp = 32, the largest the model accepts" in out
