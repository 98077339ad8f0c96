"""`symmem memory` end to end (CliRunner): human output, --json, options and their errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from symmem.cli import app

runner = CliRunner()
KEYS = {
    "weights",
    "gradients",
    "optimizer",
    "activations",
    "transient",
    "kv_cache",
    "overhead",
    "total",
}


def test_json_document() -> None:
    r = runner.invoke(app, ["memory", "examples/gpt2.mem", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["mode"] == "train"
    assert set(doc["bytes"]) == KEYS and set(doc["formulas"]) == KEYS
    assert doc["bytes"]["total"] == sum(doc["bytes"][k] for k in KEYS - {"total"})
    # GPT-2, fp32: 124,439,808 parameters x 4 bytes
    assert doc["bytes"]["weights"] == 124_439_808 * 4
    assert doc["bytes"]["overhead"] == 2**30


def test_human_output_binary_units_and_formulas() -> None:
    r = runner.invoke(
        app, ["memory", "gpt2", "--mode", "infer", "--precision", "bf16", "--set", "batch=1"]
    )
    assert r.exit_code == 0, r.output
    assert "248,879,616" in r.output  # 124,439,808 x 2 bytes
    assert "237.35 MiB" in r.output
    assert "kv_cache = " in r.output and "weights = " in r.output
    assert "GiB" in r.output


def test_llama_kv_per_token() -> None:
    r = runner.invoke(
        app,
        [
            "memory",
            "llama3.1-8b",
            "--mode",
            "infer",
            "--precision",
            "bf16",
            "--set",
            "batch=1",
            "--set",
            "seq_len=1",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["bytes"]["kv_cache"] == 131_072


def test_parallel_and_training_options() -> None:
    args = [
        "memory",
        "gpt2",
        "--precision",
        "mixed",
        "--optimizer",
        "adam",
        "--checkpointing",
        "selective",
        "--tp",
        "2",
        "--sp",
        "--pp",
        "2",
        "--micro-batches",
        "2",
        "--dp",
        "4",
        "--zero",
        "1",
        "--attention",
        "eager",
        "--device",
        "cuda",
        "--overhead",
        "512MiB",
        "--per-layer",
        "--json",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["bytes"]["overhead"] == 512 * 2**20
    assert doc["config"]["zero"] == 1 and doc["config"]["sp"] is True
    # every flag reaches the memory model: the CLI's bytes are the API's with the same options
    # (a flag dropped on the way would change a component)
    import symmem

    api = symmem.load("gpt2").memory(
        "train",
        precision="mixed",
        optimizer="adam",
        checkpointing="selective",
        tp=2,
        sp=True,
        pp=2,
        micro_batches=2,
        dp=4,
        zero=1,
        attention="eager",
        device="cuda",
        overhead=512 * 2**20,
    )
    assert doc["bytes"] == api.bytes()
    base = json.loads(runner.invoke(app, ["memory", "gpt2", "--json"]).output)["bytes"]
    assert all(
        doc["bytes"][k] != base[k]
        for k in ("weights", "gradients", "optimizer", "activations", "overhead")
    )


def test_lora_and_quant_options() -> None:
    r = runner.invoke(
        app,
        [
            "memory",
            "llama2-7b",
            "--precision",
            "bf16",
            "--quant",
            "nf4",
            "--double-quant",
            "--lora-rank",
            "16",
            "--lora-targets",
            "q_proj,k_proj,v_proj,o_proj",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "LoRA r=16" in r.output
    import symmem

    doc = json.loads(
        runner.invoke(
            app,
            [
                "memory",
                "llama2-7b",
                "--precision",
                "bf16",
                "--quant",
                "nf4",
                "--double-quant",
                "--lora-rank",
                "16",
                "--lora-targets",
                "q_proj,k_proj,v_proj,o_proj",
                "--json",
            ],
        ).output
    )
    api = symmem.load("llama2-7b").memory(
        "train",
        precision="bf16",
        quant="nf4",
        double_quant=True,
        lora_rank=16,
        lora_targets="q_proj,k_proj,v_proj,o_proj",
    )
    assert doc["bytes"] == api.bytes()


def test_free_symbols_print_formulas() -> None:
    r = runner.invoke(app, ["memory", "gpt2", "--free", "batch", "--free", "seq_len"])
    assert r.exit_code == 0, r.output
    assert "batch*seq_len" in r.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--optimizer", "adamx"], "adamw"),
        (["--precision", "fp64"], "mixed-bf16"),
        (["--mode", "infer", "--kv-dtype", "int2"], "fp8"),
        (["--quant", "int3", "--mode", "infer"], "nf4"),
        (["--checkpointing", "most"], "selective"),
        (["--zero", "5"], "ZeRO"),
        (["--overhead", "lots"], "overhead"),
        (["--set", "nope=3"], "nope"),
    ],
)
def test_errors_exit_1_with_a_message(args: list[str], needle: str) -> None:
    r = runner.invoke(app, ["memory", "gpt2", *args])
    assert r.exit_code == 1, r.output
    assert needle in r.output
    assert "Traceback" not in r.output
