"""solve, diff, show, sweep and latex --quantity memory end to end (CliRunner on bundled examples),
and every bad input: exit code 1, one message, no traceback, no file written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import symmem
from symmem.cli import app

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def ok(*args: str) -> str:
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r.output


def fails(*args: str, match: str) -> str:
    r = run(*args)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert match in r.output, r.output
    return r.output


# ------------------------------------------------------------------ solve
def test_solve_json_is_exact() -> None:
    doc = json.loads(ok("solve", "examples/gpt2.mem", "--budget", "24GB", "--json"))
    assert set(doc) >= {
        "symbol",
        "value",
        "bytes_at_value",
        "bytes_at_next",
        "budget_bytes",
        "method",
    }
    assert doc["budget_bytes"] == 24 * 10**9 and doc["symbol"] == "batch"
    total = symmem.load("gpt2", free=["batch"]).memory(mode="train").total
    v = doc["value"]
    assert (
        total.evaluate(batch=v)
        == doc["bytes_at_value"]
        <= 24 * 10**9
        < total.evaluate(batch=v + 1)
        == doc["bytes_at_next"]
    )


def test_solve_text_echoes_budget_and_breakdown() -> None:
    out = ok("solve", "gpt2", "--budget", "24 GiB")
    assert "25,769,803,776 bytes" in out
    assert "headroom" in out and "breakdown at batch" in out and "activations" in out


def test_solve_gpu_uses_the_catalogue() -> None:
    doc = json.loads(ok("solve", "gpt2", "--gpu", "h100-80gb", "--mode", "infer", "--json"))
    assert doc["budget_bytes"] == 81559 * 2**20


def test_solve_with_memory_options_and_seq_len() -> None:
    doc = json.loads(
        ok(
            "solve",
            "gpt2",
            "--budget",
            "24GiB",
            "--for",
            "seq_len",
            "--attention",
            "eager",
            "--json",
        )
    )
    total = symmem.load("gpt2", free=["seq_len"]).memory(mode="train", attention="eager").total
    v = doc["value"]
    assert total.evaluate(seq_len=v) <= 24 * 2**30 < total.evaluate(seq_len=v + 1)
    assert doc["method"] == "closed-form"


def test_solve_nothing_fits_suggests_changes() -> None:
    out = ok("solve", "llama2-7b", "--budget", "8GB", "--mode", "infer")
    assert "does not fit" in out and "over the budget" in out
    assert "largest component: weights" in out
    assert "what would make it fit" in out


def test_solve_nothing_fits_json_lists_remedies() -> None:
    doc = json.loads(ok("solve", "llama2-7b", "--budget", "8GB", "--mode", "infer", "--json"))
    assert doc["value"] is None and doc["bytes_at_value"] > doc["budget_bytes"]
    assert doc["remedies"]
    m = symmem.load("llama2-7b", free=["batch"])
    for fix in doc["remedies"]:
        total = m.memory(mode="infer", **fix["options"]).total
        v = fix["value"]
        assert total.evaluate(batch=v) <= 8 * 10**9 < total.evaluate(batch=v + 1)


def test_solve_every_value_fits() -> None:
    out = ok("solve", "gpt2", "--budget", "1GB", "--quantity", "params")
    assert "every value of batch fits" in out
    doc = json.loads(ok("solve", "gpt2", "--budget", "1GB", "--quantity", "params", "--json"))
    assert doc["unbounded"] is True and doc["bytes_at_next"] is None and doc["method"] == "constant"


def test_solve_frontier() -> None:
    out = ok(
        "solve",
        "gpt2",
        "--budget",
        "24GB",
        "--for",
        "batch",
        "--for",
        "seq_len",
        "--range",
        "256,512,1024",
    )
    lines = [ln.split() for ln in out.splitlines() if ln.strip() and ln.strip()[0].isdigit()]
    assert [ln[0] for ln in lines] == ["256", "512", "1,024"]
    m = symmem.load("gpt2", free=["batch", "seq_len"])
    total = m.memory(mode="train").total
    for s_text, b_text in lines:
        s, b = int(s_text.replace(",", "")), int(b_text.replace(",", ""))
        assert (
            total.evaluate(batch=b, seq_len=s)
            <= 24 * 10**9
            < total.evaluate(batch=b + 1, seq_len=s)
        )


def test_solve_frontier_json_default_range() -> None:
    doc = json.loads(
        ok("solve", "gpt2", "--budget", "24GB", "--for", "batch", "--for", "seq_len", "--json")
    )
    assert [row["seq_len"] for row in doc["rows"]] == [2**i for i in range(13)]  # up to 4 x 1024


@pytest.mark.parametrize("budget", ["-1GB", "lots", "24 GX", "0"])
def test_solve_bad_budget(budget: str) -> None:
    fails("solve", "gpt2", "--budget", budget, match="budget")


def test_solve_unknown_for_symbol() -> None:
    fails("solve", "gpt2", "--budget", "24GB", "--for", "bach", match="unknown symbol 'bach'")


def test_solve_unknown_gpu() -> None:
    fails("solve", "gpt2", "--gpu", "h1000", match="unknown GPU")


def test_solve_budget_and_gpu() -> None:
    fails("solve", "gpt2", "--gpu", "h100", "--budget", "1GB", match="not both")


def test_solve_no_budget() -> None:
    fails("solve", "gpt2", match="give a memory budget")


def test_solve_bad_memory_option_value() -> None:
    fails(
        "solve",
        "gpt2",
        "--budget",
        "24GB",
        "--optimizer",
        "adamm",
        match="unknown optimizer 'adamm'",
    )


def test_solve_memory_options_change_the_answer() -> None:
    # bf16 mixed precision with full checkpointing fits more samples than fp32 without
    plain = json.loads(ok("solve", "gpt2", "--budget", "24GB", "--json"))
    fast = json.loads(
        ok(
            "solve",
            "gpt2",
            "--budget",
            "24GB",
            "--json",
            "--precision",
            "mixed-bf16",
            "--checkpointing",
            "full",
        )
    )
    assert fast["value"] > plain["value"]
    total = (
        symmem.load("gpt2", free=["batch"])
        .memory(precision="mixed-bf16", checkpointing="full")
        .total
    )
    assert total.evaluate(batch=fast["value"]) == fast["bytes_at_value"]


def test_memory_options_do_not_apply_to_params() -> None:
    fails(
        "solve",
        "gpt2",
        "--budget",
        "24GB",
        "-q",
        "params",
        "--precision",
        "bf16",
        match="do not apply",
    )


def test_solve_unknown_quantity() -> None:
    fails(
        "solve",
        "gpt2",
        "--budget",
        "24GB",
        "-q",
        "activation",
        match="unknown quantity 'activation'",
    )


def test_solve_three_symbols() -> None:
    fails(
        "solve",
        "gpt2",
        "--budget",
        "24GB",
        "--for",
        "batch",
        "--for",
        "seq_len",
        "--for",
        "d_model",
        match="at most twice",
    )


# ------------------------------------------------------------------ diff and show
def test_diff_batch() -> None:
    out = ok("diff", "gpt2", "--wrt", "batch")
    assert "bytes per extra sample" in out
    total = symmem.load("gpt2", free=["batch"]).memory(mode="train").total
    slope = total.evaluate(batch=9) - total.evaluate(
        batch=8
    )  # linear in batch: the difference is the slope
    assert f"{slope:,} bytes per extra sample" in out


def test_diff_params_json() -> None:
    doc = json.loads(ok("diff", "gpt2", "--wrt", "d_model", "-q", "params", "--json"))
    assert doc["value"] == 272_623 and doc["meaning"] == "parameters per unit of d_model"


def test_diff_mixed() -> None:
    out = ok("diff", "gpt2", "--wrt", "batch", "--wrt", "seq_len")
    assert "per extra sample per extra token of context" in out


def test_diff_unknown_symbol() -> None:
    fails("diff", "gpt2", "--wrt", "bach", match="unknown symbol 'bach'")


def test_show_params_and_leading() -> None:
    out = ok("show", "gpt2")
    assert "12*d_model**2*n_layers" in out and "124,439,808" in out
    out = ok("show", "gpt2", "--leading")
    assert "params ~ 12*d_model**2*n_layers" in out and "-31.75%" in out


def test_show_memory_in_batch() -> None:
    out = ok("show", "gpt2", "-q", "memory", "--free", "batch")
    total = symmem.load("gpt2", free=["batch"]).memory(mode="train").total
    slope = total.evaluate(batch=2) - total.evaluate(batch=1)
    assert f"{slope}*batch" in out


def test_show_component() -> None:
    out = ok("show", "gpt2", "-q", "weights")
    assert "weights =" in out


# ------------------------------------------------------------------ sweep
def test_sweep_table() -> None:
    out = ok("sweep", "gpt2", "--grid", "batch=1:2", "--grid", "seq_len=512,1024")
    lines = out.splitlines()
    assert lines[0].startswith("assumed: precision fp32")  # the header states what is assumed
    assert lines[1] == "values: d_model = 768, n_layers = 12, n_heads = 12, vocab = 50,257, " + (
        "n_ctx = 1,024 (default in gpt2.mem)"
    )
    grid = "grid: batch = 1, 2 (--grid); seq_len = 512, 1,024 (--grid)"
    assert lines[2] == grid
    assert lines[3].split() == ["batch", "seq_len", "memory", "memory", "GiB"]
    assert len(lines) == 8


def test_sweep_csv_matches_evaluate(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    ok(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:8:3",
        "--grid",
        "seq_len=256,2048",
        "--components",
        "--out",
        str(path),
    )
    rows = path.read_text().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["batch", "seq_len", "memory"] and "activations" in header
    total = symmem.load("gpt2", free=["batch", "seq_len"]).memory(mode="train").total
    for row in rows[1:]:
        bv, sv, mv = (int(x) for x in row.split(",")[:3])
        assert mv == total.evaluate(batch=bv, seq_len=sv)


def test_sweep_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.png"
    ok(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:16",
        "--grid",
        "seq_len=512,1024",
        "--plot",
        str(path),
        "--gpu",
        "rtx4090",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stacked = tmp_path / "s.png"
    ok(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:16",
        "--plot",
        str(stacked),
        "--stacked",
        "--budget",
        "24GB",
    )
    assert stacked.exists()


def test_sweep_empty_grid(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    fails("sweep", "gpt2", "--grid", "batch=8:1", "--out", str(out), match="empty")
    assert not out.exists()


def test_sweep_no_grid() -> None:
    fails("sweep", "gpt2", match="--grid")


def test_sweep_unknown_symbol(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    fails("sweep", "gpt2", "--grid", "bach=1:8", "--out", str(out), match="unknown symbol 'bach'")
    assert not out.exists()


def test_sweep_grid_too_large(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    fails(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:10000000",
        "--grid",
        "seq_len=1:10000000",
        "--out",
        str(out),
        match="memory is available",
    )
    assert not out.exists()


def test_sweep_one_huge_axis(tmp_path: Path) -> None:
    """One axis of 10^11 values: a message, not a MemoryError traceback."""
    out = tmp_path / "s.csv"
    fails(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:100000000000",
        "--out",
        str(out),
        match="memory is available",
    )
    assert not out.exists()


def test_sweep_bad_extension(tmp_path: Path) -> None:
    out = tmp_path / "s.xlsx"
    fails("sweep", "gpt2", "--grid", "batch=1:2", "--out", str(out), match="unknown format")
    assert not out.exists()


def test_sweep_missing_directory(tmp_path: Path) -> None:
    fails(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:2",
        "--out",
        str(tmp_path / "no" / "s.csv"),
        match="does not exist",
    )


def test_sweep_stacked_needs_memory(tmp_path: Path) -> None:
    fails(
        "sweep",
        "gpt2",
        "-q",
        "params",
        "--grid",
        "d_model=64:128:64",
        "--plot",
        str(tmp_path / "p.png"),
        "--stacked",
        match="--stacked needs",
    )
    assert not (tmp_path / "p.png").exists()


def test_sweep_plot_three_symbols(tmp_path: Path) -> None:
    out, png = tmp_path / "s.csv", tmp_path / "p.png"
    fails(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:2",
        "--grid",
        "seq_len=1:2",
        "--grid",
        "n_layers=1:2",
        "--out",
        str(out),
        "--plot",
        str(png),
        match="one or two grid symbols",
    )
    assert not out.exists() and not png.exists()


def test_sweep_stacked_two_lines(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    fails(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:2",
        "--grid",
        "seq_len=1:2",
        "--plot",
        str(png),
        "--stacked",
        match="one line",
    )
    assert not png.exists()


# ------------------------------------------------------------------ latex
def test_latex_memory_align() -> None:
    out = ok("latex", "gpt2", "--quantity", "memory", "--mode", "infer")
    head, out = out.split("\\begin{align}", 1)
    out = "\\begin{align}" + out
    # what was assumed and the values used come first, as LaTeX comments
    assert head.splitlines()[0].startswith("% assumed: precision fp32")
    assert head.splitlines()[1].startswith("% values: batch = 8, seq_len = 1,024")
    assert all(line.startswith("% ") for line in head.splitlines())
    assert r"M_{\text{weights}} &=" in out and r"M_{\text{kv\_cache}} &=" in out
    assert r"M_{\text{gradients}}" not in out  # zero in inference: left out
    assert out.rstrip().endswith(r"\end{align}")


# ------------------------------------------------------------------ a small model solved by hand
TINY = """d = 64
heads = 4
seq_len = 16
batch = 1
model tiny(input = [batch, seq_len, d]) {
  repeat 3 {
    residual { attention(d, heads = heads) }
  }
}
"""


def test_tiny_kv_cache_solve_by_hand(tmp_path: Path) -> None:
    # KV cache in fp32: each of the 3 layers keeps K and V, 2 * batch * seq_len * d elements
    # of 4 bytes:
    # 3 * 8 * b * s * d = 24 * 16 * 64 * b = 24,576 b bytes; 24,576 b <= 10^6 -> b <= 40.69 -> 40
    # (983,040 bytes; 41 -> 1,007,616)
    path = tmp_path / "tiny.mem"
    path.write_text(TINY)
    doc = json.loads(
        ok(
            "solve",
            str(path),
            "-q",
            "kv_cache",
            "--mode",
            "infer",
            "--kv-dtype",
            "fp32",
            "--budget",
            "1MB",
            "--json",
        )
    )
    assert (doc["value"], doc["bytes_at_value"], doc["bytes_at_next"]) == (40, 983_040, 1_007_616)


def test_tiny_frontier_by_hand(tmp_path: Path) -> None:
    # 1,536 * b * s <= 10^6  ->  b = floor(10^6 / (1,536 s)):
    # s=16 -> 40, 64 -> 10, 256 -> 2, 1024 -> none
    path = tmp_path / "tiny.mem"
    path.write_text(TINY)
    doc = json.loads(
        ok(
            "solve",
            str(path),
            "-q",
            "kv_cache",
            "--mode",
            "infer",
            "--kv-dtype",
            "fp32",
            "--budget",
            "1MB",
            "--for",
            "batch",
            "--for",
            "seq_len",
            "--range",
            "16,64,256,1024",
            "--json",
        )
    )
    assert [(row["seq_len"], row["value"]) for row in doc["rows"]] == [
        (16, 40),
        (64, 10),
        (256, 2),
        (1024, None),
    ]


@pytest.mark.parametrize("command", ["solve", "sweep"])
def test_help_shows_range_syntax_verbatim(command: str) -> None:
    """rich renders ':b:' in help text as an emoji (the help read 'a🅱step'); the examples
    must come out as typed."""
    out = ok(command, "--help")
    assert "1:64:8" in out and "\U0001f171" not in out


def test_solve_for_lora_rank(tmp_path: Path) -> None:
    """--for lora_rank: with the budget set to the memory at --lora-rank 5 (an integer rank, the
    other code path) the answer is 5; with 2,052 bytes more, 6 (2,052 bytes per rank for this
    model, derived in tests/test_memory.py, test_symbolic_lora_rank_solves_for_the_largest_rank)."""
    path = tmp_path / "m.mem"
    path.write_text(
        "model m(input = [batch, 64]) {\n"
        "  linear q_proj(64, 64, bias = false)\n"
        "  rmsnorm norm(64)\n"
        "}\n"
    )
    base = ["--set", "batch=1", "--device", "cpu", "--optimizer", "adam"]
    at5 = json.loads(ok("memory", str(path), "--lora-rank", "5", "--json", *base))["bytes"]["total"]
    doc = json.loads(
        ok("solve", str(path), "--for", "lora_rank", "--budget", f"{at5}B", "--json", *base)
    )
    assert (doc["symbol"], doc["value"], doc["bytes_at_value"]) == ("lora_rank", 5, at5)
    doc = json.loads(
        ok("solve", str(path), "--for", "lora_rank", "--budget", f"{at5 + 2052}B", "--json", *base)
    )
    assert doc["value"] == 6
    out = ok("sweep", str(path), "--grid", "lora_rank=5,6", *base)
    assert f"{at5:,}" in out and f"{at5 + 2052:,}" in out


@pytest.mark.parametrize("plot", ["a.xyz", "missing-dir/a.png"])
def test_sweep_bad_plot_writes_no_table(tmp_path: Path, plot: str) -> None:
    """A bad --plot is refused before the table is written (it used to leave a complete CSV
    behind a failed command)."""
    out = tmp_path / "s.csv"
    fails(
        "sweep",
        "gpt2",
        "--grid",
        "batch=1:4",
        "--out",
        str(out),
        "--plot",
        str(tmp_path / plot),
        match="--plot",
    )
    assert not out.exists()


def test_diff_wrt_lora_rank(tmp_path: Path) -> None:
    """d memory / d lora_rank for one 64 x 64 q_proj, fp32 Adam: 128 adapter parameters per rank
    x 16 bytes (weights, gradients, two states) + B's saved input A x, 4 bytes per sample per
    rank: 4*batch + 2048, 2,052 at batch 1 (tests/test_memory.py derives the same)."""
    path = tmp_path / "m.mem"
    path.write_text(
        "model m(input = [batch, 64]) {\n"
        "  linear q_proj(64, 64, bias = false)\n"
        "  rmsnorm norm(64)\n"
        "}\n"
    )
    doc = json.loads(
        ok(
            "diff",
            str(path),
            "--wrt",
            "lora_rank",
            "--set",
            "batch=1",
            "--device",
            "cpu",
            "--optimizer",
            "adam",
            "--lora-rank",
            "8",
            "--json",
        )
    )
    assert (
        doc["derivative"] == "4*batch + 2048"
        and doc["value"] == 2052
        and doc["at"] == {"lora_rank": 8}
    )


def test_solve_cache_capped_by_a_window_levels_off(tmp_path: Path) -> None:
    """A sliding window caps the KV cache at 32 x 8 x 128 x 2 x 2 x 4096 = 536,870,912 bytes
    (Mistral-7B-v0.1, tests/test_memory.py): under a 1 GiB budget every context fits; the report
    must not say the cache does not grow (at seq_len = 1 it is 131,072 bytes)."""
    path = tmp_path / "m.mem"
    path.write_text(
        "window = 4096\nmodel m(input = [batch, seq_len, 4096]) {\n"
        "  repeat 32 layers { attention a(4096, heads = 32, kv_heads = 8, window = window) }\n}\n"
    )
    args = [
        "solve",
        str(path),
        "--mode",
        "infer",
        "-q",
        "kv_cache",
        "--for",
        "seq_len",
        "--set",
        "batch=1",
        "--precision",
        "bf16",
        "--budget",
        "1GiB",
    ]
    out = ok(*args)
    assert "levels off" in out and "does not grow" not in out
    assert json.loads(ok(*args, "--json"))["unbounded"] is True
