"""DeepSeek-V3's multi-token-prediction module as a memory option (--mtp/--no-mtp).

The module's size is the transformers-derived count of tests/test_examples_transformers.py
(test_deepseek_v3_mtp: one MoE decoder layer, the 2d -> d projection and three RMSNorms,
11,610,067,968 parameters); here only which builds count it is decided.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import OptionError
from symmem.memory import MemoryEvaluator

MTP_PARAMS = 11_610_067_968


@pytest.fixture(scope="module")
def ds() -> symmem.Model:
    return symmem.load("deepseek-v3")


def test_training_counts_it_by_default(ds: symmem.Model) -> None:
    """Training (mixed bf16: bf16 weights, the fp8 checkpoint not trained) counts the module:
    its bf16 weights are 2 x (11,610,067,968 parameters + its router's 256-value
    e_score_correction_bias buffer) bytes; --no-mtp leaves them out; --mtp is the default."""
    with_mtp = ds.memory("train")
    without = ds.memory("train", mtp=False)
    assert with_mtp.weights.evaluate() - without.weights.evaluate() == 2 * (MTP_PARAMS + 256)
    assert with_mtp.weights.evaluate() == ds.memory("train", mtp=True).weights.evaluate()
    assert next(a[:2] for a in with_mtp.config.assumed if a[0] == "mtp") == ("mtp", "on")


def test_inference_leaves_it_out_by_default(ds: symmem.Model) -> None:
    """Served without the module (vLLM loads it only for MTP speculative decoding): the default
    equals --no-mtp; --mtp equals --set mtp_layers=1 (a value the user sets wins)."""
    base = ds.memory("infer").weights.evaluate()
    assert base == ds.memory("infer", mtp=False).weights.evaluate()
    on = ds.memory("infer", mtp=True).weights.evaluate()
    assert on > base
    assert ds.with_values({"mtp_layers": 1}).memory("infer").weights.evaluate() == on


def test_a_zero_the_user_sets_wins(ds: symmem.Model) -> None:
    """``--set mtp_layers=0`` in training counts no module (as --no-mtp), where the file's own
    0 is the default the option overrides: the stated value is the counted one."""
    zero = ds.with_values({"mtp_layers": 0}).memory("train")
    assert zero.weights.evaluate() == ds.memory("train", mtp=False).weights.evaluate()
    assert zero.weights.evaluate() < ds.memory("train").weights.evaluate()
    assert not any(a[0] == "mtp" for a in zero.config.assumed)


def test_parameters_unchanged(ds: symmem.Model) -> None:
    """`symmem params` counts the graph as its values say: the published 671B, without MTP."""
    assert ds.params().total.evaluate() == 671_026_404_352


def test_fast_evaluator_agrees(ds: symmem.Model) -> None:
    ev = MemoryEvaluator(ds.graph, ds.values)
    for opts in (
        {"mode": "train"},
        {"mode": "train", "mtp": False},
        {"mode": "infer", "mtp": True},
    ):
        assert ev.bytes(**opts)["total"] == ds.memory(**opts).total.evaluate()


def test_refusals() -> None:
    with pytest.raises(OptionError, match="declares none"):
        symmem.load("llama3.1-8b").memory("train", mtp=True)
    with pytest.raises(symmem.SymmemError, match="mtp_layers"):
        symmem.parse("d = 4\nmodel m(input = [1, d], mtp = 1) { linear a(d, d) }")


def test_cli() -> None:
    r = CliRunner().invoke(app, ["memory", "deepseek-v3", "--no-mtp", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    default = json.loads(CliRunner().invoke(app, ["memory", "deepseek-v3", "--json"]).output)
    assert default["bytes"]["weights"] - doc["bytes"]["weights"] == 2 * (MTP_PARAMS + 256)


@pytest.mark.parametrize(
    ("args", "value", "source"),
    [
        (["--mode", "infer", "--mtp"], 1, "--mtp"),
        (["--no-mtp"], 0, "--no-mtp"),
        ([], 1, "counted in training"),
        (["--mode", "infer"], 0, "left out at inference"),
        (["--set", "mtp_layers=0"], 0, "--set"),
    ],
)
def test_the_stated_mtp_layers_is_the_one_counted(args: list[str], value: int, source: str) -> None:
    """The values an output states are the ones its numbers use: `--mtp` put the module's
    weights in while the values said `mtp_layers = 0 (default in deepseek-v3.mem)`."""
    doc = json.loads(CliRunner().invoke(app, ["memory", "deepseek-v3", *args, "--json"]).output)
    stated = doc["values"]["mtp_layers"]
    assert stated["value"] == value and source in stated["source"]
    m = symmem.load("deepseek-v3", set_values={"mtp_layers": value})
    mode = "infer" if "infer" in args else "train"
    assert doc["bytes"]["weights"] == m.memory(mode, mtp=None).weights.evaluate()
    text = CliRunner().invoke(app, ["memory", "deepseek-v3", *args]).output
    assert f"mtp_layers = {value} (" in text
