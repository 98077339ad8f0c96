"""`symmem params` and `symmem latex` end to end (CliRunner), and their error paths."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from symmem.cli import app

runner = CliRunner()


def test_params_table_and_total() -> None:
    r = runner.invoke(app, ["params", "examples/gpt2.mem"])
    assert r.exit_code == 0, r.output
    assert "total:         124,439,808" in r.output
    assert "(weight tied to wte)" in r.output


def test_params_bundled_name_and_set() -> None:
    r = runner.invoke(
        app,
        ["params", "gpt2", "--set", "n_layers=24", "--set", "d_model=1024", "--set", "n_heads=16"],
    )
    assert r.exit_code == 0, r.output
    assert "354,823,168" in r.output  # GPT-2 medium (transformers: 354,823,168 with tied head)


def test_params_free_prints_a_polynomial() -> None:
    r = runner.invoke(app, ["params", "gpt2", "--free", "d_model"])
    assert r.exit_code == 0
    # 12 layers * 12 d^2 = 144 d^2;
    # d: 12 * 13 (per-layer biases and norms) + 1024 (wpe) + 50257 (wte) + 2 (ln_f)
    assert "144*d_model**2 + 51439*d_model" in r.output


def test_params_json_keys() -> None:
    r = runner.invoke(app, ["params", "gpt2", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert {"total", "active", "formula", "symbols", "layers"} <= doc.keys()
    assert doc["total"] == 124_439_808
    assert doc["symbols"]["d_model"] == 768
    assert {"path", "kind", "count", "formula"} <= doc["layers"][0].keys()
    assert sum(row["count"] for row in doc["layers"]) == doc["total"]


def test_latex_uses_readable_symbols() -> None:
    r = runner.invoke(app, ["latex", "gpt2"])
    assert r.exit_code == 0
    comment, formula = r.output.strip().split("\n")  # the values used, as a LaTeX comment
    assert comment == "% values: d_model = 768, n_layers = 12, vocab = 50,257, n_ctx = 1,024 " + (
        "(default in gpt2.mem)"
    )
    assert formula == (
        r"N = 12 \cdot d_{model}^{2} \cdot n_{layers} + d_{model} \cdot n_{ctx}"
        r" + 13 \cdot d_{model} \cdot n_{layers}"
        r" + d_{model} \cdot \mathrm{vocab} + 2 \cdot d_{model}"
    )


def test_latex_per_layer_golden() -> None:
    r = runner.invoke(app, ["latex", "gpt2", "--per-layer"])
    assert r.exit_code == 0
    # The golden file, checked by hand against GPT-2's modules (not taken on trust from symmem):
    # wte V*d, wpe n_ctx*d, ln_1 / ln_2 2d (weight, bias), attn c_attn d*3d + 3d + c_proj d*d + d
    # = 4d^2 + 4d, mlp c_fc d*4d + 4d + c_proj 4d*d + d = 8d^2 + 5d, ln_f 2d; the head is tied.
    golden = Path(__file__).parent / "golden" / "gpt2_per_layer.tex"
    comments, tex = r.output.split("\\begin{align}", 1)
    assert comments.startswith("% values: d_model = 768,")  # the values used, LaTeX comments
    assert "\\begin{align}" + tex == golden.read_text()


def test_latex_per_layer_parenthesises_a_sum_multiplicity() -> None:
    # deepseek-v3: the MoE stack repeats (n_layers - n_dense) times; a per-layer line must read
    # (n_layers - n_dense) * (d_model), not -n_dense + n_layers * d_model
    r = runner.invoke(app, ["latex", "deepseek-v3", "--per-layer"])
    assert r.exit_code == 0, r.output
    line = next(
        ln for ln in r.output.splitlines() if "input\\_layernorm" in ln and "moe\\_layers" in ln
    )
    assert line.endswith(r"&= \left(n_{layers} - n_{dense}\right) \cdot \left(d_{model}\right) \\")
    body = r.output.split("\\begin{align}\n", 1)[1]
    assert body.count(r"\left(") == body.count(r"\right)") and body.count("{") == body.count("}")


def test_user_errors_exit_1_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mem"
    bad.write_text("model m(input = [batch, 4]) {\n  linear(4, 4, biass = true)\n}\n")
    r = runner.invoke(app, ["params", str(bad)])
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert f"{bad}:2:16: error: linear has no argument 'biass'" in r.output
    assert "^^^^" in r.output


def test_missing_file_and_bad_set() -> None:
    r = runner.invoke(app, ["params", "nope.mem"])
    assert r.exit_code == 1 and "no such file" in r.output
    r = runner.invoke(app, ["params", "gpt2", "--set", "d_model"])
    assert r.exit_code == 1 and "name=value" in r.output
    r = runner.invoke(app, ["params", "gpt2", "--set", "d_model=big"])
    assert r.exit_code == 1 and "not a number" in r.output
    for value in ("inf", "nan"):
        r = runner.invoke(app, ["params", "gpt2", "--set", f"d_model={value}"])
        assert r.exit_code == 1 and "not a number" in r.output
    # decimal values are read exactly (issue 13): 1e400 is 10^400, not a float's infinity
    r = runner.invoke(app, ["params", "gpt2", "--set", "n_layers=1e400"])
    assert r.exit_code == 0
    assert max(len(word.replace(",", "")) for word in r.output.split()) > 400
    r = runner.invoke(app, ["params", "gpt2", "--set", "n_layers=1e5000"])
    assert r.exit_code == 1 and "too large" in r.output
    r = runner.invoke(app, ["params", "seed_formulas"])
    assert r.exit_code == 1 and "choose one with --model NAME" in r.output
    r = runner.invoke(app, ["params", "gpt2", "--free", "dmodel"])
    assert r.exit_code == 1 and "did you mean 'd_model'" in r.output
