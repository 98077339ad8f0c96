"""The whole measured grid behind docs/validation.md's table (issue 9): 792 runs.

tests/test_saved_grid.py runs 16 combinations per model (every level of every factor once);
this script runs each combination at all nine (batch, sequence) pairs: fp32/bf16 x dropout
0/0.1 x eager/sdpa x loss/none x batch 1, 2, 4 x seq 8, 16, 32 for transformers' GPT-2,
Llama (MHA, GQA) and BERT (144 runs each), and fp32/bf16 x dropout x loss x the nine pairs
for the CNN and the two LSTM backends (72 each).  It reuses the test's models, measurement
and CLI helpers, so the figures are the test's.  Dropout 0 is given both ways, as the
symbols' value (``--set p=0``) and as ``--no-dropout``; the two must agree (checked).

    python benchmarks/saved_grid.py [--families gpt2,llama,...]

Prints worst and mean absolute error per model x setting as a Markdown table (about 10
minutes on 2 shared cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "tests")]  # this checkout's symmem, the test

import test_saved_grid as g  # noqa: E402
import torch  # noqa: E402

import symmem  # noqa: E402

FAMILIES = ("gpt2", "llama", "llama_gqa", "bert", "cnn", "lstm_native", "lstm_onednn")
NAMES = {
    "gpt2": "GPT-2 (transformers)",
    "llama": "Llama MHA (transformers)",
    "llama_gqa": "Llama GQA (transformers)",
    "bert": "BERT (transformers)",
    "cnn": "CNN (torch)",
    "lstm_native": "LSTM, 2 layers, native (torch)",
    "lstm_onednn": "LSTM, 2 layers, oneDNN (torch)",
}
PAIRS = list(itertools.product(g.BATCHES, g.SEQS))


def _import(family: str, d: Path) -> Path:
    """The `.mem` file `symmem import-hf` writes (as the test's ``imported`` fixture)."""
    cfg, _ = g._hf_model(family, 0.1, "sdpa")
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    mem = d / f"{family}.mem"
    g._cli("import-hf", str(d / "config.json"), "-o", str(mem))
    if family == "bert":
        text = mem.read_text()
        text = "\n".join(ln for ln in text.splitlines() if "linear pooler" not in ln) + "\n"
        mem.write_text(text)
    return mem


def _both(
    mem: Path,
    impl: str,
    dtype: str,
    p: float,
    attn: str,
    loss: bool,
    sets: Any,
    symbols: tuple[str, ...],
    extra: tuple[str, ...] = (),
) -> int:
    """The formula; at p = 0 both as the symbols' value and as --no-dropout (must agree)."""
    a = g._formula(mem, impl, dtype, p, attn, loss, sets, symbols, 0, extra)
    if p == 0:
        b = g._formula(mem, impl, dtype, p, attn, loss, sets, symbols, 1, extra)
        assert a == b, (mem, dtype, attn, loss, sets, a, b)
    return a


def run(family: str, tmp: Path) -> list[tuple[str, float]]:
    """(setting, relative error) per run."""
    out = []
    if family in ("gpt2", "llama", "llama_gqa", "bert"):
        mem = _import(family, tmp)
        header = mem.read_text().split("block")[0]
        symbols = tuple(s for s in g.HF_DROPOUTS if f"\n{s} =" in header)
        combos = itertools.product(g.DTYPES, (0.0, 0.1), ("eager", "sdpa"), (True, False), PAIRS)
        for k, (dtype, p, attn, loss, (b, s)) in enumerate(combos):
            torch.manual_seed(0)
            _, model = g._hf_model(family, p, attn)
            model = model.to(g.DTYPES[dtype]).train()
            ids = torch.randint(0, g.V, (b, s), generator=torch.Generator().manual_seed(k))

            def forward(model: Any = model, ids: Any = ids, loss: bool = loss) -> Any:
                if family == "bert":
                    h = model(input_ids=ids).last_hidden_state
                    return g._ce(h, ids.reshape(-1) % h.shape[-1]) if loss else h
                if loss:
                    return model(input_ids=ids, labels=ids, use_cache=False).loss
                return model(input_ids=ids, use_cache=False).logits

            measured = g._measure(forward, model)
            sets = {"batch": b, "seq_len": s}
            formula = _both(mem, "transformers", dtype, p, attn, loss, sets, symbols)
            out.append((f"{dtype}, {attn}", (formula - measured) / measured))
        return out
    mem = tmp / "model.mem"
    mem.write_text(g.CNN_MEM if family == "cnn" else g.LSTM_MEM)
    backend = family.removeprefix("lstm_")
    extra = () if family == "cnn" else ("--rnn", backend)
    for k, (dtype, p, loss, (b, s)) in enumerate(
        itertools.product(g.DTYPES, (0.0, 0.1), (True, False), PAIRS)
    ):
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(k)
        if family == "cnn":
            model = g._cnn(p).to(g.DTYPES[dtype]).train()
            x = torch.randn(b, 3, s, s, generator=gen).to(g.DTYPES[dtype])
            labels = torch.randint(0, 10, (b,), generator=gen)
            sets = {"batch": b, "size": s}
        else:
            model = g._Lstm(p).to(g.DTYPES[dtype]).train()
            x = torch.randint(0, g.V, (b, s), generator=gen)
            labels = torch.randint(0, g.V, (b * s,), generator=gen)
            sets = {"batch": b, "seq_len": s}

        def fwd(model: Any = model, x: Any = x, labels: Any = labels, loss: bool = loss) -> Any:
            o = model(x)
            return g._ce(o, labels) if loss else o

        with torch.backends.mkldnn.flags(enabled=backend == "onednn"):
            measured = g._measure(fwd, model)
        formula = _both(mem, "torch", dtype, p, "sdpa", loss, sets, ("p",), extra)
        out.append((dtype, (formula - measured) / measured))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=",".join(FAMILIES))
    args = ap.parse_args()
    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    start = time.perf_counter()
    print(f"# symmem from {symmem.__file__}", file=sys.stderr)
    for family in args.families.split(","):
        with tempfile.TemporaryDirectory() as d:
            for setting, err in run(family, Path(d)):
                rows[(family, setting)].append(err)
        print(f"# {family} done at {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print("| model | setting | runs | worst | mean abs |")
    print("|---|---|---:|---:|---:|")
    everything = []
    for (family, setting), errs in rows.items():
        worst = max(errs, key=abs)
        mean = sum(abs(e) for e in errs) / len(errs)
        everything += errs
        print(f"| {NAMES[family]} | {setting} | {len(errs)} | {worst:+.3%} | {mean:.3%} |")
    worst = max(everything, key=abs)
    print(
        f"\nall {len(everything)} runs: worst {worst:+.3%}, "
        f"within 2 %: {sum(abs(e) < 0.02 for e in everything)}"
    )


if __name__ == "__main__":
    main()
