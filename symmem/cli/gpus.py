"""`symmem gpus`: the accelerator catalogue that `--gpu` reads its budget from."""

from __future__ import annotations

import typer

from symmem.cli.common import JsonOpt, echo_json
from symmem.gpus import CATALOGUE
from symmem.units import format_bytes


def gpus(json_: JsonOpt = False) -> None:
    """List the catalogued accelerators and the capacity `--gpu NAME` uses as the budget."""
    if json_:
        echo_json(
            [
                {
                    "key": g.key,
                    "name": g.name,
                    "nominal": g.nominal,
                    "nominal_bytes": g.nominal_bytes,
                    "reported_bytes": g.reported_bytes,
                    "capacity_bytes": g.capacity_bytes,
                    "capacity": g.capacity_kind,
                    "source": g.source,
                    "reported_source": g.reported_source,
                    "note": g.note,
                    "cuda_bytes": g.cuda_bytes,
                    "cuda_total_bytes": g.cuda_total_bytes,
                    "cuda_source": g.cuda_source,
                    "node": g.node,
                    "node_host_bytes": g.node_host_bytes,
                    "node_host_source": g.node_host_source,
                }
                for g in CATALOGUE
            ]
        )
        return
    rows = [
        (
            g.key,
            g.name,
            g.nominal,
            f"{g.capacity_bytes:,}",
            format_bytes(g.capacity_bytes),
            g.capacity_kind,
        )
        for g in CATALOGUE
    ]
    header = ("gpu", "name", "vendor says", "capacity (bytes)", "", "from")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for r in (header, *rows):
        typer.echo(
            "  ".join(
                c.rjust(w) if i in (3, 4) else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    typer.echo("")
    typer.echo(
        "capacity: the total the driver reports (nvidia-smi memory.total) where catalogued "
        "('reported'),"
    )
    typer.echo(
        "else the vendor's figure in binary units ('nominal', an upper bound). The CUDA context "
        "is not"
    )
    typer.echo(
        "subtracted: the memory model counts it as overhead. Sources: symmem gpus --json; "
        "docs/solve.md."
    )
