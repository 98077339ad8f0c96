"""Cold-process time of `symmem memory` (import, parse, build, memory model, render).

    python benchmarks/bench_memory.py [model ...] [--runs N] [--cores N]
    # default: examples/deepseek-v3.mem, 5 runs, pinned to 2 cores when taskset exists

Each run is a fresh `python -m symmem.cli memory <model>` process (so imports count),
restricted to N CPU cores with `taskset` where available; prints every run and the median.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(model: str, cores: int, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system, less sensitive to other load)."""
    cmd = [sys.executable, "-c", "from symmem.cli import main; main()", "memory", model, *extra]
    if cores and shutil.which("taskset"):
        cmd = ["taskset", "-c", ",".join(str(i) for i in range(cores)), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"symmem memory {model} failed:\n{done.stderr}")
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["examples/deepseek-v3.mem"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--extra", default="", help="extra options for symmem memory, space-separated")
    args = ap.parse_args()
    for model in args.models:
        run_once(model, args.cores, args.extra.split())  # warm the OS file cache, not Python
        runs = [run_once(model, args.cores, args.extra.split()) for _ in range(args.runs)]
        wall = [w for w, _ in runs]
        shown = ", ".join(f"{t:.3f}" for t in wall)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{model}: median {statistics.median(wall):.3f} s wall over {args.runs} cold "
            f"processes ({shown}) on {args.cores} cores; median CPU time {cpu:.3f} s"
        )


if __name__ == "__main__":
    main()
