"""A tour of symmem's Python API: load, params, memory, solve, diff, leading terms, LaTeX, sweep.

Run it from the repository root:  python examples/api_demo.py
Every number printed is exact (Python ints), computed from sympy expressions.
"""

from __future__ import annotations

import symmem
from symmem.calculus import diff, leading
from symmem.export import quantity_latex
from symmem.gpus import gpu
from symmem.solve import solve
from symmem.sweep import sweep
from symmem.units import format_bytes


def main() -> None:
    # 1. Load a model: a .mem file, a Hugging Face config.json, or a bundled name.
    #    Keep batch and seq_len symbolic (free) so that we can solve and sweep over them.
    model = symmem.load("examples/llama2-7b.mem", free=["batch", "seq_len"])
    print(f"model: {model.name}")

    # 2. Parameters: a Quantity = a sympy expression + the model's values.
    params = model.params()
    print(f"parameters: {int(params.total):,}")  # 6,738,415,616
    print(f"formula:    {params.total.simplified()}")

    # 3. Training memory per GPU with mixed precision and AdamW, each component exact.
    mem = model.memory(
        mode="train", precision="mixed-bf16", optimizer="adamw", checkpointing="full"
    )
    at = {"batch": 4, "seq_len": 4096}
    for name, q in mem.components().items():
        print(f"  {name:<12} {format_bytes(q.evaluate(**at)):>12}")

    # 4. The largest batch that fits an 80 GB H100 at seq_len 4096
    # (exact: total(v) <= budget < total(v+1)).
    h100 = gpu("h100-80gb")
    total = model.memory(
        mode="train", precision="mixed-bf16", checkpointing="full", zero=3, dp=8
    ).total
    r = solve(total, h100.capacity_bytes, for_="batch", fixed={"seq_len": 4096})
    print(
        f"largest batch on {h100.name} (ZeRO-3 over 8 GPUs): {r.value} ({r.method}); "
        f"{format_bytes(r.bytes_at_value)} used, {format_bytes(r.headroom)} left"
    )

    # Budgets can be strings: SI units are powers of 1000, IEC units powers of 1024.
    print(
        f"batch in 24GB vs 24GiB: {solve(total, '24GB', 'batch', fixed={'seq_len': 1024}).value} "
        f"vs {solve(total, '24GiB', 'batch', fixed={'seq_len': 1024}).value}"
    )

    # 5. Sensitivities: bytes per extra sample, exact (memory is linear in batch).
    per_sample = diff(total, "batch")
    print(f"bytes per extra sample at seq_len 4096: {per_sample.evaluate(seq_len=4096):,}")

    # 6. The rule of thumb as the limit of the exact formula: leading terms in the large-size limit.
    gpt2 = symmem.load("gpt2")
    lead = leading(gpt2.params().total)
    print(
        f"GPT-2 parameters ~ {lead.expr}  (off by {lead.relative_error:+.1%} at GPT-2's own sizes)"
    )

    # 7. LaTeX for a paper.
    print(quantity_latex(gpt2.params().total))

    # 8. A sweep: a pandas DataFrame (a dict of numpy arrays without pandas), exact int64 values.
    table = sweep(total, {"batch": "1:8", "seq_len": [1024, 2048, 4096]})
    print(table.head() if hasattr(table, "head") else {k: v[:5] for k, v in table.items()})


if __name__ == "__main__":
    main()
