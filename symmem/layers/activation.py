"""Elementwise activation functions: no parameters, same shape.

Each function is its own DSL kind (``gelu``, ``relu``...); they differ only in
what PyTorch saves for backward (see symmem.memory and docs/memory.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.layers._saved import act_fn_saved
from symmem.layers.base import Example, IntEval, Layer, Saved, Shape, prod, register
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch

#: DSL kind -> torch.nn class name
_TORCH = {
    "relu": "ReLU",
    "gelu": "GELU",
    "gelu_tanh": "GELU",
    "silu": "SiLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
}


@record
class Activation(Layer):
    kind: ClassVar[str] = "activation"
    summary: ClassVar[str] = "elementwise nonlinearity"

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """relu / tanh / sigmoid keep their output, gelu / silu their input (derivatives.yaml)."""
        return act_fn_saved(self.kind, prod(shape), "", in_ref="input", out_ref="output")

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        if self.kind == "gelu_tanh":
            return torch.nn.GELU(approximate="tanh")
        return getattr(torch.nn, _TORCH[self.kind])()


def _make(name: str) -> type[Activation]:
    cls = type(
        name.title().replace("_", ""),
        (Activation,),
        {
            "kind": name,
            "examples": (Example(name, "[2, 8, 16]"),),
            "__doc__": f"{name} activation",
            "__module__": __name__,
        },
    )
    cls.__annotations__ = {}
    return register(record(cls))  # type: ignore[return-value]


@register
@record
class Relu(Activation):
    """relu, optionally in place (``torch.nn.ReLU(inplace=True)``).

    In place, ``relu_`` overwrites its input and keeps its result, the same storage
    (derivatives.yaml: ``threshold_backward(grad, result, 0)``): the saved bytes are those
    of the out-of-place relu, which keeps its result too (measured equal), but no new
    tensor is made, so the stream tensor passes through (:attr:`passes_through`).  PyTorch
    refuses it on a leaf that requires grad, and its backward fails when the previous op
    keeps its own output (sigmoid, tanh, relu) for backward.
    """

    kind: ClassVar[str] = "relu"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("relu", "[2, 8, 16]"),
        Example("linear(16, 16); relu(inplace = true)", "[2, 8, 16]", "in place"),
    )

    inplace: bool = False

    def passes_through(self, policy: ActPolicy) -> bool:
        return self.inplace

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.ReLU(inplace=self.inplace)


RELU = Relu
GELU = _make("gelu")
GELU_TANH = _make("gelu_tanh")
SILU = _make("silu")
TANH = _make("tanh")
SIGMOID = _make("sigmoid")
