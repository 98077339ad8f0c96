"""In-process re-evaluation of memory under other options, on a loaded model.

    python benchmarks/bench_reevaluate.py [model ...] [--repeat 5]
    # default: llama2-7b and deepseek-v3; goal: median <= 0.2 ms per evaluation

Goes over a grid of options (precision x tp x ZeRO stage x checkpointing, dp = 8, for
training; kv dtype x tp x quantization for inference) with
:class:`symmem.memory.MemoryEvaluator`, once to compile each structure, then `--repeat`
times, timing each evaluation; prints the median and the full build (`Model.memory` +
evaluation) for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import symmem
from symmem.memory import MemoryEvaluator


def grid(model: str) -> list[dict[str, Any]]:
    train = [
        {"precision": p, "tp": t, "zero": z, "dp": 8, "checkpointing": c}
        for p in ("fp32", "mixed-bf16")
        for t in (1, 2, 4, 8)
        for z in (0, 1, 2, 3)
        for c in ("none", "full", "selective")
    ]
    infer = [
        {"mode": "infer", "kv_dtype": kv, "tp": t, "quant": q}
        for kv in ("bf16", "fp8")
        for t in (1, 2, 4, 8)
        for q in (None, "int8", "int4")
    ]
    return train + infer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["llama2-7b", "deepseek-v3"])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for name in args.models:
        m = symmem.load(name)
        points = grid(name)
        ev = MemoryEvaluator(m.graph, m.values)
        t0 = time.perf_counter()
        for o in points:
            ev.bytes(**o)
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeat):
            for o in points:
                t = time.perf_counter()
                ev.bytes(**o)
                times.append(time.perf_counter() - t)
        full = []
        for o in points[:: max(1, len(points) // 12)]:
            t = time.perf_counter()
            m.memory(**o).bytes()
            full.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(
            f"{name}: {len(points)} option sets; re-evaluation median {med * 1e3:.3f} ms "
            f"(goal 0.2 ms: {med / 2e-4:.2f}x of it); first pass (compiling each structure) "
            f"{compile_s / len(points) * 1e3:.2f} ms each; full build + evaluation median "
            f"{statistics.median(full) * 1e3:.2f} ms ({statistics.median(full) / med:.0f}x slower)"
        )


if __name__ == "__main__":
    main()
