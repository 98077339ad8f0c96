"""Time to parse and build a model's exact parameter expression (after imports).

    python benchmarks/bench_params.py [model ...]     # default: deepseek-v3 gpt2

Also shows that the cost does not grow with depth: `repeat` bodies are built once,
so doubling the number of layers (both the symbol's value and a literal count)
leaves the time unchanged.
"""

from __future__ import annotations

import re
import statistics
import sys
import time

import symmem
from symmem.sources import read_source


def build(text: str) -> int:
    m = symmem.parse(text)
    return int(m.params().total)


def median_time(text: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        build(text)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def doubled(text: str) -> str:
    """Double every `repeat <integer>` and every symbol default that counts layers."""
    text = re.sub(r"repeat (\d+)", lambda m: f"repeat {2 * int(m.group(1))}", text)
    return re.sub(
        r"^(\w*layers\w*) = (\d+)",
        lambda m: f"{m.group(1)} = {2 * int(m.group(2))}",
        text,
        flags=re.M,
    )


def main(names: list[str]) -> None:
    build(read_source("gpt2")[0])  # warm imports and the grammar cache
    for name in names:
        text = read_source(name)[0]
        base, twice = median_time(text), median_time(doubled(text))
        print(
            f"{name:>14}: parse + build + count {base * 1e3:7.1f} ms"
            f"   doubled depth {twice * 1e3:7.1f} ms"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["deepseek-v3", "gpt2"])
