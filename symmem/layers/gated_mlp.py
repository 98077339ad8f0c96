"""Gated feed-forward block, SwiGLU / GeGLU (Shazeer 2020, "GLU Variants Improve
Transformer"): ``down(act(gate(x)) * up(x))``, three matrices.

Parameters: ``3 d f`` (plus ``2f + d`` biases when ``bias``).  Llama-2-7B:
d = 4096, f = 11008 -> 135,266,304 per layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.layers._saved import act_fn_saved, tokens
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Saved,
    Shape,
    Size,
    prod,
    register,
)
from symmem.layers.mlp import Act
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class GatedMLP(Layer):
    kind: ClassVar[str] = "gated_mlp"
    aliases: ClassVar[tuple[str, ...]] = ("swiglu", "glu_mlp")
    summary: ClassVar[str] = "down(act(gate(x)) * up(x)), three matrices"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("gated_mlp(16, 48)", "[2, 8, 16]"),
        Example("gated_mlp(16, 48, act = relu)", "[2, 8, 16]"),
    )

    d_model: Size
    d_ff: Size
    act: Act = "silu"
    bias: bool = False

    def tensors(self) -> list[ParamTensor]:
        d, f = self.d_model, self.d_ff
        out = [
            # Megatron-LM: gate / up column-parallel, down row-parallel
            ParamTensor("gate_proj.weight", (f, d), matmul=True, tp_split=True),
            ParamTensor("up_proj.weight", (f, d), matmul=True, tp_split=True),
            ParamTensor("down_proj.weight", (d, f), matmul=True, tp_split=True),
        ]
        if self.bias:
            out += [
                ParamTensor("gate_proj.bias", (f,)),
                ParamTensor("up_proj.bias", (f,)),
                ParamTensor("down_proj.bias", (d,)),
            ]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """x (read by gate and up: one tensor), the activation's tensors, up(x) and
        act(gate(x)) kept by their product, and down's input (the product):
        d + 4f per token for SiLU (Hugging Face LlamaMLP; measured).
        """
        t = tokens(shape)
        nf = t * self.d_ff
        gate, up = ("input", "gate_proj.weight"), ("input", "up_proj.weight")
        out = [
            Saved(
                "input", prod(shape), "act", "input", grads=("gate_proj.weight", "up_proj.weight")
            )
        ]
        # the activation keeps its tensors for gate's gradient; the product keeps act(gate(x))
        # for up's and up(x) for gate's (a relu's output serves both); down keeps its input for
        # its weight only
        shared = ("input", "gate_proj.weight", "up_proj.weight")
        has_out = self.act in ("relu", "tanh", "sigmoid")
        acts = act_fn_saved(
            self.act,
            nf,
            "",
            tp_split=True,
            in_ref="own",
            out_ref="own",
            grads=shared if has_out else gate,
        )
        out += acts
        if not any(s.name.endswith(".out") for s in acts):  # the mul keeps act(gate(x))
            out.append(Saved("act.out", nf, "act", "own", tp_split=True, grads=up))
        out += [
            Saved("up.out", nf, "act", "own", tp_split=True, grads=gate),
            Saved("down.input", nf, "act", "own", tp_split=True, grads=("down_proj.weight",)),
        ]
        return out

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_mlp import TorchMLP

        return TorchMLP(ev(self.d_model), ev(self.d_ff), self.act, self.bias, 0.0, gated=True)
