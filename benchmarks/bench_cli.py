"""Cold-process wall time of `symmem solve --budget 80GB examples/deepseek-v3.mem --mode infer`.

Runs the whole command N times in fresh processes and prints the median, and
the import time of the CLI (``python -X importtime -c "import symmem.cli"``)
split into sympy, typer and symmem's own modules.

    python benchmarks/bench_cli.py [--runs 5] [--model examples/deepseek-v3.mem]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(
            cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        out.append(time.perf_counter() - t)
    return out


def import_times() -> dict[str, float]:
    """Cumulative import time (s) of the top-level packages, from -X importtime."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import symmem.cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    cum: dict[str, float] = {}
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and m[3] in (
            "sympy",
            "typer",
            "lark",
            "numpy",
            "symmem",
            "symmem.cli",
            "symmem.memory",
        ):
            cum[m[3]] = max(cum.get(m[3], 0.0), int(m[1]) / 1e6)
    return cum


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", default="examples/deepseek-v3.mem")
    args = ap.parse_args()
    import shutil

    exe = shutil.which("symmem")  # the installed entry point, as users run it
    head = (
        [exe] if exe else [sys.executable, "-c", "import sys; from symmem.cli import main; main()"]
    )
    solve = [*head, "solve", "--budget", "80GB", args.model, "--mode", "infer"]
    empty = wall([sys.executable, "-c", "pass"], args.runs)
    imp = wall([sys.executable, "-c", "import symmem.cli"], args.runs)
    full = wall(solve, args.runs)
    # a budget that fits: no remedies to search (one memory build instead of four)
    fits = wall([*solve, "--tp", "8", "--quant", "int4"], args.runs)
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    print(f"python startup          median {statistics.median(empty):.3f} s")
    print(f"import symmem.cli       median {statistics.median(imp):.3f} s")
    shown = ", ".join(f"{x:.2f}" for x in full)
    print(f"symmem solve (cold)     median {statistics.median(full):.3f} s  runs: {shown}")
    fits_median = statistics.median(fits)
    print(f"  ... --tp 8 --quant int4 median {fits_median:.3f} s  (fits: no remedy search)")
    for name, secs in sorted(import_times().items(), key=lambda kv: -kv[1]):
        print(f"  -X importtime {name:<14} {secs:.3f} s (cumulative)")


if __name__ == "__main__":
    main()
