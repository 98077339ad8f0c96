"""One table across number formats: inference weights and full training with AdamW, per format.

What ``accelerate estimate-memory`` prints (its columns: dtype, total size, training using
Adam), with the components *summed*: accelerate's ``estimate_training_usage`` takes the
largest of model, gradients, optimizer and step (``max(memory_sizes.values())``), which for
fp16 / bf16 gives 8 bytes a parameter where mixed-precision AdamW holds 16 (2 + 2 + 4 + 8:
ZeRO, Rajbhandari et al. 2020, Section 3.1).  Activations are left out (they depend on the
batch), as accelerate leaves them out.  A verb over the memory model.
"""

from __future__ import annotations

from typing import Any

from symmem.memory import HasGraph, build
from symmem.options import MemoryOptions
from symmem.records import record


@record
class DtypeRow:
    """One format: the bytes of the weights at inference, and of weights + gradients +
    optimizer state for full training with AdamW (None: quantized weights are frozen)."""

    label: str
    infer_options: dict[str, Any]
    weights: int
    train_options: dict[str, Any] | None
    training: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.label,
            "inference_options": self.infer_options,
            "inference_weights": self.weights,
            "training_options": self.train_options,
            "training_weights_gradients_optimizer": self.training,
        }


def dtype_table(model: HasGraph) -> list[DtypeRow]:
    """fp32, the model's 16-bit dtype (bf16 when it declares none), int8, int4, and the
    model's own checkpoint format when it declares one; at the model's values."""
    declared = model.graph.options
    dtype = declared.get("dtype")
    sixteen = dtype if dtype in ("fp16", "bf16") and dtype is not None else "bf16"
    rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
        ("fp32", {"precision": "fp32", "quant": "none"}, {"precision": "fp32"}),
        (sixteen, {"precision": sixteen, "quant": "none"}, {"precision": f"mixed-{sixteen}"}),
        ("int8", {"precision": sixteen, "quant": "int8"}, None),
        ("int4 (groups of 128)", {"precision": sixteen, "quant": "int4"}, None),
    ]
    own = declared.get("quantization")
    if own is not None:
        rows.append((f"{own} (the model's)", {"precision": sixteen, "quant": own}, None))
    out: list[DtypeRow] = []
    for label, infer, train in rows:
        r = build(model.graph, model.values, MemoryOptions.from_user({"mode": "infer", **infer}))
        weights = r.weights.evaluate()
        training = None
        if train is not None:
            t = build(
                model.graph,
                model.values,
                MemoryOptions.from_user({"mode": "train", "optimizer": "adamw", **train}),
            )
            training = t.weights.evaluate() + t.gradients.evaluate() + t.optimizer.evaluate()
        out.append(DtypeRow(label, infer, _int(weights), train, _int(training)))
    return out


def _int(x: Any) -> Any:
    if x is None or isinstance(x, int):
        return x
    try:
        return int(x) if x == int(x) else x
    except TypeError:
        return x
