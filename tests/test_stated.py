"""Every output states what was assumed and the values it used (issue 10), and the smaller
defects: a derivative simplified at the model's values, LaTeX grouped per block, sweep GiB
columns, plot titles and axes."""

from __future__ import annotations

import json

import sympy
from typer.testing import CliRunner

from symmem.cli import app
from symmem.export import params_latex
from symmem.model import load

runner = CliRunner()


def ok(*args: str) -> str:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r.output


# ------------------------------------------------------------------ diff
def test_diff_seq_len_is_simplified_at_the_models_values() -> None:
    out = ok("diff", "llama3.1-8b", "--wrt", "seq_len", "--mode", "infer", "--seq-len", "4096")
    lines = out.splitlines()
    assert lines[0].startswith("assumed: precision bf16 (the model's dtype = bf16")
    assert lines[1] == "point: seq_len = 4096 (--seq-len)"
    assert lines[2].startswith("values: batch = 1 (default in llama3.1-8b.mem)")
    # By hand (Llama-3.1-8B, bf16, batch 1): the KV cache grows by 2 (K, V) x 32 layers x 8 KV
    # heads x 128 head_dim x 2 bytes = 131,072 bytes per token; the inference transient (the
    # larger of the MLP's 8*d_ff + 2*d_model = 122,880 and attention's 6*d_model +
    # 4*d_model*n_kv/n_heads + 4*n_heads = 28,800 bytes per token) grows with the tokens of
    # one forward step until the 8,192-token chunk: a step in seq_len, nothing else.
    derivative = next(ln for ln in lines if ln.startswith("d memory/d seq_len = "))
    assert derivative == "d memory/d seq_len = 122880*Heaviside(8192 - seq_len) + 131072"
    assert lines[-1] == "at seq_len=4,096: 253,952 bytes per extra token of context"


def test_diff_at_values_equals_the_general_derivative() -> None:
    doc = json.loads(ok("diff", "mixtral-8x7b", "--wrt", "seq_len", "--mode", "infer", "--json"))
    assert list(doc["values"])[:2] == ["batch", "seq_len"]
    assert doc["values"]["seq_len"]["source"] == "default in mixtral-8x7b.mem"
    assert doc["config"]["assumed"]["precision"]["value"] == "bf16"
    general, here = sympy.sympify(doc["derivative"]), sympy.sympify(doc["at_values"])
    assert {s.name for s in here.free_symbols} == {"seq_len"}
    assert len(doc["at_values"]) < 80 < len(doc["derivative"])
    values = {sympy.Symbol(k): v["value"] for k, v in doc["values"].items() if k != "seq_len"}
    for n in (1, 1000, 4096, 10_000, 100_000):
        s = sympy.Symbol("seq_len")
        assert general.subs(values).subs(s, n) == here.subs(s, n)


# ------------------------------------------------------------------ show
def test_show_states_assumptions_and_values() -> None:
    lines = ok("show", "gpt2", "-q", "memory").splitlines()
    assert lines[0].startswith("assumed: precision fp32")
    assert lines[1] == (
        "values: batch = 8, seq_len = 1,024 (default in gpt2.mem); --batch, --seq-len or --set "
        "change them"
    )
    doc = json.loads(ok("show", "gpt2", "-q", "memory", "--batch", "2", "--json"))
    assert doc["values"]["batch"] == {"value": 2, "source": "--batch"}
    assert "precision" in doc["config"]["assumed"]
    doc = json.loads(ok("show", "gpt2", "--json"))  # params: the symbols it uses, no config
    assert doc["values"]["d_model"] == {"value": 768, "source": "default in gpt2.mem"}
    assert "config" not in doc and "batch" not in doc["values"]


# ------------------------------------------------------------------ latex
def test_latex_of_a_large_model_is_grouped_per_block() -> None:
    out = ok("latex", "deepseek-v3")
    body = out.split("\\begin{align}\n", 1)[1].split("\n\\end{align}")[0].splitlines()
    blocks = ["embed_tokens", "dense_layers", "moe_layers", "mtp", "norm", "lm_head"]
    assert [ln.split("&=")[0].strip() for ln in body[:-1]] == [
        rf"N_{{\text{{{b.replace('_', chr(92) + '_')}}}}}" for b in blocks
    ]
    for ln in body:  # no negative term: (n_layers - n_dense) stays a factor
        assert " - " not in ln.replace(r"\left(n_{layers} - n_{dense}\right)", "")
    assert out.startswith("% values: ")


def test_latex_grouped_sums_each_block() -> None:
    m = load("gpt2")
    tex = params_latex(m.params(), m.symbols, grouped=True)
    # By hand (GPT-2, the golden per-layer file's derivation): one block = ln_1 2d + attn
    # 4d^2 + 4d + ln_2 2d + mlp 8d^2 + 5d = 12d^2 + 13d, repeated n_layers times.
    assert (
        r"N_{\text{h}} &= n_{layers} \cdot \left(12 \cdot d_{model}^{2} + 13 \cdot d_{model}\right)"
        in tex
    )
    assert tex.splitlines()[-2].endswith(
        r"N &= N_{\text{wte}} + N_{\text{wpe}} + N_{\text{h}} + N_{\text{ln\_f}}"
    )
    assert params_latex(m.params(), m.symbols).startswith("N = 12")  # short: one line


# ------------------------------------------------------------------ sweep
def test_sweep_files_keep_bytes_and_state_the_values(tmp_path) -> None:
    out = ok("sweep", "gpt2", "--grid", "batch=1:3", "--out", str(tmp_path / "s.json"))
    assert out.splitlines()[0].startswith("assumed: precision fp32")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["values"]["seq_len"] == {"value": 1024, "source": "default in gpt2.mem"}
    assert doc["config"]["precision"] == "fp32" and doc["grid"] == {"batch": [1, 2, 3]}
    m = load("gpt2")
    exact = m.memory().total
    assert [r["memory"] for r in doc["rows"]] == [exact.evaluate(batch=b) for b in (1, 2, 3)]
    ok("sweep", "gpt2", "--grid", "batch=1:3", "--out", str(tmp_path / "s.csv"))
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "batch,memory"  # no comment line
    import pyarrow.parquet as pq

    ok("sweep", "gpt2", "--grid", "batch=1:3", "--out", str(tmp_path / "s.parquet"))
    meta = pq.read_schema(tmp_path / "s.parquet").metadata[b"symmem"]
    assert json.loads(meta)["values"]["seq_len"]["value"] == 1024


def test_sweep_table_has_gib_beside_bytes() -> None:
    lines = ok("sweep", "gpt2", "--grid", "batch=1:2").splitlines()
    row = lines[-1].split()
    value = load("gpt2").memory().total.evaluate(batch=2)
    assert row == ["2", f"{value:,}", f"{value / 2**30:,.2f}"]
    params = ok("sweep", "gpt2", "-q", "params", "--grid", "d_model=768,1536").splitlines()
    assert "GiB" not in params[-3]  # parameters are not bytes


def test_plot_title_and_a_linear_quantity_on_a_linear_axis(tmp_path) -> None:
    import numpy as np

    from symmem.plot import plot_sweep

    x = np.arange(1, 257)
    drawn = plot_sweep({"batch": x, "m": 3 * x + 5}, ["batch"], "m", tmp_path / "a.png")
    assert drawn["xscale"] == "linear"  # linear in batch: a straight line, not a log curve
    drawn = plot_sweep({"batch": x, "m": x**2}, ["batch"], "m", tmp_path / "b.png")
    assert drawn["xscale"] == "log"
    from symmem.cli._quantity import select
    from symmem.cli.sweep import _plot, _title  # the CLI's title states the choices
    from symmem.options import MemoryOptions

    m = load("gpt2")
    sel = select(m, "memory", MemoryOptions(tp=2))
    title = _title(m, sel, ["seq_len", "d_model"])
    assert title.splitlines() == [
        "gpt2: memory (train, fp32; tp=2, pp=1, dp=1, zero=0)",
        "seq_len=1,024, d_model=768",
    ]
    assert (
        _plot(
            sel,
            {"batch": x, "memory": 3 * x},
            ["batch"],
            str(tmp_path / "c.png"),
            None,
            None,
            [],
            title,
        )["title"]
        == title
    )


# ------------------------------------------------------------------ serving, layouts
def test_serving_first_line_says_what_was_assumed() -> None:
    out = ok("serving", "llama3.1-8b", "--gpu", "h100-80gb", "--max-model-len", "8192")
    first = out.splitlines()[0]
    assert first.startswith("assumed: budget 79.19 GiB (--gpu or --budget); dtype bf16 (the ")
    assert "kv_dtype bf16 (--kv-dtype)" in first and "max_model_len" not in first  # given


def test_layouts_state_assumptions_and_values() -> None:
    out = ok("layouts", "llama3.1-8b", "--gpu", "h100-80gb", "--limit", "1")
    lines = out.splitlines()
    assert lines[0].startswith("assumed: precision mixed-bf16")
    assert lines[1].startswith("values: vocab = 128,256, d_model = 4,096")
    doc = json.loads(ok("layouts", "llama3.1-8b", "--gpu", "h100-80gb", "--json"))
    assert doc["values"]["d_ff"] == {"value": 14336, "source": "default in llama3.1-8b.mem"}
    assert doc["config"]["assumed"]["precision"]["value"] == "mixed-bf16"
    assert "batch" not in doc["values"]  # the search's micro-batch, not the file's


def test_params_text_states_the_values_it_used() -> None:
    """`symmem params` printed its table without the values behind it: the first line now
    names each symbol of the total with its value and source, a --set among them."""
    out = CliRunner().invoke(app, ["params", "gpt2", "--set", "d_model=1536"]).output
    first = out.splitlines()[0]
    assert first.startswith("values: d_model = 1,536 (--set)")
    assert "n_layers = 12" in first and "(default in gpt2.mem)" in first
    # 12 d^2 L + d n_ctx + 13 d L + d V + 2 d at d = 1,536 (GPT-2's total formula)
    d, L, V, n = 1536, 12, 50257, 1024
    assert f"total:         {12 * d * d * L + d * n + 13 * d * L + d * V + 2 * d:,}" in out


def test_sweep_states_its_grid_as_given() -> None:
    """A listed grid was described as its bounds ('1..16 (3 values)', as if every batch
    between): a few values are listed, an even range gets its step."""
    run = CliRunner()
    out = run.invoke(app, ["sweep", "gpt2", "--grid", "batch=1,4,16"]).output
    assert "grid: batch = 1, 4, 16 (--grid)" in out
    out = run.invoke(app, ["sweep", "gpt2", "--grid", "batch=1:64:8"]).output
    assert "grid: batch = 1..57 step 8 (8 values) (--grid)" in out
