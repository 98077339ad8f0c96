"""What the memory model returns: one expression per component, and per-layer rows."""

from __future__ import annotations

from dataclasses import field
from typing import Any

import sympy

from symmem.memory.config import MemoryConfig
from symmem.quantity import Quantity
from symmem.records import record
from symmem.rich import table_html

#: the components of a breakdown, in display order (``total`` is their sum)
COMPONENTS = (
    "weights",
    "gradients",
    "optimizer",
    "activations",
    "transient",
    "kv_cache",
    "overhead",
)
#: the components a layer's row has (the others are whole-model quantities)
ROW_COMPONENTS = ("weights", "gradients", "optimizer", "activations", "kv_cache")


@record
class MemoryRow:
    """Bytes per GPU of one layer (all its ``repeat`` instances).

    Sharding by tp / ep / ZeRO is applied; pipeline stages and full
    recompute are not (they are whole-model effects), so with ``pp > 1`` or
    full checkpointing the rows do not add up to the components.
    """

    path: str
    kind: str
    multiplicity: sympy.Expr
    weights: sympy.Expr
    gradients: sympy.Expr
    optimizer: sympy.Expr
    activations: sympy.Expr
    kv_cache: sympy.Expr


@record
class MemoryResult:
    """One expression per component, in bytes per GPU; ``total`` is exactly their sum."""

    mode: str
    weights: Quantity
    gradients: Quantity
    optimizer: Quantity
    activations: Quantity
    transient: Quantity
    kv_cache: Quantity
    overhead: Quantity
    total: Quantity
    config: MemoryConfig
    rows: tuple[MemoryRow, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: host memory per node (offloaded states of its GPUs' ranks; 0 without --offload): a second
    #: budget beside the GPU's, not part of ``total``
    host: Quantity | None = None

    def _repr_html_(self) -> str:
        """Jupyter: each component in exact bytes and binary units, with a bar of its share."""
        rows = [(name, q.evaluate()) for name, q in self.components().items()]
        return table_html(rows, caption=self.config.summary(), bytes_column=True, total="total")

    def components(self, *, with_total: bool = True) -> dict[str, Quantity]:
        names = (*COMPONENTS, "total") if with_total else COMPONENTS
        return {name: getattr(self, name) for name in names}

    def bytes(self, **values: Any) -> dict[str, int | sympy.Expr]:
        """Each component evaluated (exact ints when every symbol has a value)."""
        return {name: q.evaluate(**values) for name, q in self.components().items()}

    def formulas(self) -> dict[str, str]:
        return {name: str(q.expr) for name, q in self.components().items()}

    def to_json(self) -> dict[str, Any]:
        """``{"mode", "bytes": {...}, "formulas": {...}, "config": {...}}`` (docs/memory.md)."""

        def num(v: Any) -> Any:
            return v if isinstance(v, int) else str(v)

        return {
            "mode": self.mode,
            "bytes": {k: num(v) for k, v in self.bytes().items()},
            "formulas": self.formulas(),
            "config": self.config.describe(),
            "notes": list(self.notes),
            **(
                {"host_per_node": num(self.host.evaluate())}
                if self.config.offload and self.host
                else {}
            ),
        }
