"""Cold-start goals of issue 8, measured in one run.

Times three commands, each in a fresh process, N times, interleaved (one of each per round,
so a burst of load on a noisy machine hits all three alike), and prints their medians and the
two ratios against the goals:

* ``symmem memory llama2-7b --json``                       <= 1.5 x cold ``import sympy``
* ``symmem solve --budget 80GB deepseek-v3 --mode infer``   <= 2.0 x cold ``import sympy``

    python benchmarks/bench_cold.py [--runs 11] [--installed]

By default symmem runs as ``python -m symmem`` from the repository root, so the checkout's
own code is timed whatever the ``symmem`` script on PATH points at; ``--installed`` times
that script instead.  Exit status 1 when a goal is missed (a benchmark, not a test: the
test suite holds no timing).  Besides wall time it prints the CPU time (user + system) of
each process, which a busy machine disturbs much less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOALS = {"memory": 1.5, "solve": 2.0}


def once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one fresh process."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=11, help="processes per command (median)")
    ap.add_argument("--installed", action="store_true", help="time the `symmem` script on PATH")
    ap.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (default: unset it, as users have .pyc files)",
    )
    args = ap.parse_args()
    env = dict(os.environ)
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.installed:
        exe = shutil.which("symmem")
        if exe is None:
            ap.error("no `symmem` on PATH")
        head = [exe]
    else:
        head = [sys.executable, "-m", "symmem"]
    cmds = {
        "sympy": [sys.executable, "-c", "import sympy"],
        "memory": [*head, "memory", "llama2-7b", "--json"],
        "solve": [*head, "solve", "--budget", "80GB", "deepseek-v3", "--mode", "infer"],
    }
    for cmd in cmds.values():  # warm the OS file cache and write .pyc files; not timed
        once(cmd, env)
    load = os.getloadavg()[0]
    wall: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.runs):
        for key, cmd in cmds.items():
            w, c = once(cmd, env)
            wall[key].append(w)
            cpu[key].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    after = os.getloadavg()[0]
    print(f"cpus: {os.cpu_count()}, load average: {load:.2f} -> {after:.2f}, runs: {args.runs}")
    for key, cmd in cmds.items():
        shown = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))
        spread = f"{min(wall[key]):.3f}-{max(wall[key]):.3f}"
        print(f"{key:<7} wall median {med[key]:.3f} s ({spread})", end="  ")
        print(f"cpu median {med_cpu[key]:.3f} s  {shown}")
    ok = True
    for key, goal in GOALS.items():
        ratio = med[key] / med["sympy"]
        ratio_cpu = med_cpu[key] / med_cpu["sympy"]
        ok &= ratio <= goal
        verdict = "ok" if ratio <= goal else "MISSED"
        print(f"{key:<7} / sympy: wall {ratio:.2f}, cpu {ratio_cpu:.2f}", end="  ")
        print(f"(goal <= {goal} on wall)  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
