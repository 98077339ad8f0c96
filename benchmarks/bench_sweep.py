"""Sweep throughput over the Llama-2-7B training-memory expression (target >= 1e7 points/s).

Grid: batch x seq_len (eager attention, so memory is quadratic in seq_len), evaluated
exactly in int64 by symmem.sweep.sweep_arrays; the time includes building the grid.

    python benchmarks/bench_sweep.py [--batch 1:1000] [--seq 1:20000]
"""

from __future__ import annotations

import argparse
import time

import symmem
from symmem.sweep import sweep_arrays


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="1:1000")
    ap.add_argument("--seq", default="64:640000:64")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    m = symmem.load("llama2-7b", free=["batch", "seq_len"])
    total = m.memory(mode="train", attention="eager", precision="mixed-bf16").total
    sweep_arrays({"total": total}, {"batch": "1:2", "seq_len": "1:2"})  # compile once (cached)
    best = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        cols = sweep_arrays({"total": total}, {"batch": args.batch, "seq_len": args.seq})
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    n = len(cols["total"])
    print(f"{n:,} points in {best:.3f} s: {n / best:,.0f} points/s (dtype {cols['total'].dtype})")
    # the throughput of the evaluation alone, without building the grid
    from symmem.sweep import _grid_expr, compile_expr, evaluate_compiled

    syms = (m.symbols["batch"], m.symbols["seq_len"])
    c = compile_expr(_grid_expr(total, ["batch", "seq_len"]), syms)
    bcol, scol = cols["batch"], cols["seq_len"]
    t = time.perf_counter()
    evaluate_compiled(c, [bcol, scol])
    dt = time.perf_counter() - t
    print(f"evaluation alone ({c.mode}): {n / dt:,.0f} points/s")


if __name__ == "__main__":
    main()
