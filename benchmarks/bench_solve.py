"""Solve latency inside Python after loading (target < 10 ms): first solve of a quantity
(compiles and caches its one-symbol polynomial) and repeated solves (cached).

    python benchmarks/bench_solve.py [--model examples/llama2-7b.mem]
"""

from __future__ import annotations

import argparse
import statistics
import time

import symmem
from symmem.solve import solve


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    cases = [
        ("gpt2", "train", {}, "batch"),
        (
            "llama2-7b",
            "train",
            {"precision": "mixed-bf16", "checkpointing": "full", "zero": 3, "dp": 8},
            "batch",
        ),
        (
            "llama2-7b",
            "train",
            {"precision": "mixed-bf16", "attention": "eager", "zero": 3, "dp": 8},
            "seq_len",
        ),
        ("deepseek-v3", "infer", {"tp": 8, "quant": "int4"}, "batch"),
    ]
    for name, mode, opts, sym in cases:
        m = symmem.load(name, free=[sym])
        t = time.perf_counter()
        total = m.memory(mode=mode, **opts).total
        t_mem = time.perf_counter() - t
        t = time.perf_counter()
        r = solve(total, "80GB", sym)
        first = time.perf_counter() - t
        rep = timed(lambda total=total, sym=sym: solve(total, "80GB", sym), args.n)
        again = statistics.median(rep)
        print(
            f"{name:<12} {mode:<5} {sym:<8} v={r.value!s:<8} {r.method:<12} "
            f"memory() {t_mem * 1e3:7.1f} ms  first solve {first * 1e3:6.2f} ms  "
            f"repeated median {again * 1e3:6.3f} ms"
        )


if __name__ == "__main__":
    main()
