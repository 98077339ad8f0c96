"""The layout search over 1024 GPUs: `symmem.layouts.search` on a loaded model.

    python benchmarks/bench_layouts.py [--gpus 1024] [--runs 5] [--fresh 3]
    # goal: under 2 s for 1024 GPUs on the 2-core development machine

Llama-3.1-70B (the 8B file with the 70B sizes), 8192 tokens, global batch 1024
sequences, H100 80GB, mixed bf16, flash attention.  Prints the median of ``--runs``
searches in this process (sympy's caches warm after the first) and the median of
``--fresh`` first searches, each in a new process (what one `symmem layouts` pays).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CODE = """
import time, symmem
from symmem.layouts import search
from symmem.options import MemoryOptions
m = symmem.load("llama3.1-8b", set_values={{"d_model": 8192, "n_layers": 80, "n_heads": 64,
                                           "d_ff": 28672}})
o = MemoryOptions(precision="mixed-bf16", attention="flash")
times = []
for _ in range({runs}):
    t = time.perf_counter()
    r = search(m, gpus={gpus}, gpu_budget=81559 * 2**20, seq_len=8192, global_batch=1024, options=o)
    times.append(time.perf_counter() - t)
print(len(r.layouts), r.candidates, *times)
"""


def run(gpus: int, runs: int) -> tuple[int, int, list[float]]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(gpus=gpus, runs=runs)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    ).stdout.split()
    return int(out[0]), int(out[1]), [float(x) for x in out[2:]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpus", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fresh", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    fits, candidates, times = run(args.gpus, args.runs)
    firsts = [run(args.gpus, 1)[2][0] for _ in range(args.fresh)]
    warm = statistics.median(times[1:] or times)
    first = statistics.median(firsts)
    print(
        f"{args.gpus} GPUs: {fits:,} of {candidates:,} candidate layouts fit; search median "
        f"{warm:.2f} s in process, {first:.2f} s as a process's first search (goal 2 s); "
        f"load average {load:.1f} at start"
    )


if __name__ == "__main__":
    main()
