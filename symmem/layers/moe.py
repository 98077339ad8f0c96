"""Sparse mixture-of-experts feed-forward block (Shazeer et al. 2017; GShard,
Lepikhin et al. 2020; Switch, Fedus et al. 2021; Mixtral, Jiang et al. 2024;
DeepSeekMoE / DeepSeek-V2/V3 with shared experts; Qwen2-MoE).

With ``d`` = d_model, ``E`` routed experts of hidden ``f`` (``d_expert``), of
which ``k`` (``top_k``) are used per token, and ``S`` shared experts of hidden
``f_s`` (``d_shared``, default ``f``):

    router:          E d (+ E bias if router_bias)
    routed experts:  E * 3 d f   (gated: gate, up, down; 2 d f when not gated), no biases
    shared experts:  S * 3 d f_s (always active)
    shared_gate:     d            (Qwen2-MoE's sigmoid gate on the shared expert)
    score_bias:      E            (DeepSeek-V3 ``e_score_correction_bias``: a buffer)
    expert_bias:     E (2 f + d)  (gpt-oss: biases of each routed expert's gate, up and
                                   down projections, ``gate_up_proj_bias`` / ``down_proj_bias``)

Active parameters per token replace ``E`` by ``k`` in the routed experts only.
As transformers builds them: ``MixtralSparseMoeBlock`` (router without bias,
8 gated experts), ``DeepseekV3MoE`` (router + buffer, shared experts as one
MLP of hidden ``S * f``: same count), ``Qwen2MoeSparseMoeBlock`` (one shared
expert of ``shared_expert_intermediate_size`` and a 1-output gate).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.layers._saved import ffn_hidden_saved, tokens
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    NonNeg,
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
class MoE(Layer):
    kind: ClassVar[str] = "moe"
    aliases: ClassVar[tuple[str, ...]] = ("mixture_of_experts",)
    summary: ClassVar[str] = "router + top_k of n_experts routed MLPs (+ shared experts)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            "moe(16, 24, 4, 2)",
            "[2, 8, 16]",
            "every token goes to exactly top_k experts: exact totals despite routing",
        ),
        Example(
            "moe(16, 24, 6, 3, n_shared = 2, d_shared = 8, shared_gate = true, score_bias = true)",
            "[2, 8, 16]",
        ),
        Example("moe(16, 24, 4, 2, act = relu, gated = false, router_bias = true)", "[2, 8, 16]"),
        Example(
            "moe(16, 24, 4, 2, router_bias = true, expert_bias = true)",
            "[2, 8, 16]",
            "gpt-oss: biased router and experts",
        ),
    )

    d_model: Size
    d_expert: Size
    n_experts: Size
    top_k: Size
    n_shared: NonNeg = sympy.Integer(0)
    d_shared: Size | None = None
    act: Act = "silu"
    gated: bool = True
    router_bias: bool = False
    score_bias: bool = False
    shared_gate: bool = False
    #: biases in every routed expert's projections (gpt-oss)
    expert_bias: bool = False

    @property
    def f_shared(self) -> sympy.Expr:
        return self.d_expert if self.d_shared is None else self.d_shared

    def validate(self, ev: Evaluator) -> None:
        self.require_at_most(
            ev,
            self.top_k,
            self.n_experts,
            lambda k, e: f"top_k = {k} is larger than n_experts = {e}",
        )
        self.require_integer(ev, self.n_shared, "n_shared")

    def _mlp(
        self,
        prefix: str,
        f: sympy.Expr,
        copies: sympy.Expr,
        active: sympy.Expr | None,
        bias: bool = False,
    ) -> list[ParamTensor]:
        d = self.d_model
        names = (
            (("gate_proj", (f, d)), ("up_proj", (f, d)), ("down_proj", (d, f)))
            if self.gated
            else (("fc1", (f, d)), ("fc2", (d, f)))
        )
        # experts are MLPs: split by tensor parallelism like one (Megatron-LM)
        out = [
            ParamTensor(
                f"{prefix}.{n}.weight",
                shape,
                copies=copies,
                active=active,
                matmul=True,
                tp_split=True,
            )
            for n, shape in names
        ]
        if bias:
            out += [
                ParamTensor(f"{prefix}.{n}.bias", shape[:1], copies=copies, active=active)
                for n, shape in names
            ]
        return out

    def tensors(self) -> list[ParamTensor]:
        d, e = self.d_model, self.n_experts
        out = [
            ParamTensor("gate.weight", (e, d), matmul=True, router=True)
        ]  # the router: replicated
        if self.router_bias:
            out.append(ParamTensor("gate.bias", (e,)))
        if self.score_bias:
            out.append(ParamTensor("gate.e_score_correction_bias", (e,), buffer=True))
        out += self._mlp("experts", self.d_expert, e, self.top_k, self.expert_bias)
        if self.n_shared != 0:
            out += self._mlp("shared_experts", self.f_shared, self.n_shared, None)
        if self.shared_gate:
            out.append(
                ParamTensor(
                    "shared_expert_gate.weight", (sympy.Integer(1), d), matmul=True, router=True
                )
            )
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What the routed block keeps (symmem's TorchMoE, the loop of Hugging Face's
        MixtralSparseMoeBlock), for T tokens; the routing is data-dependent but every
        token goes to exactly top_k experts, so the per-expert rows add up to T k:

        router: x (T d, shared with the shared experts), softmax scores (T E), the
        top-k indices (T k, int64; gather reuses them), the gathered weights (T k)
        and their sum (T) kept by the renormalising division;
        routed experts: per routed row the gathered input (d), the expert's hidden
        tensors (see :func:`ffn_hidden_saved`: 4 f for SiLU gated), its output (d)
        and its weight (1), kept by the weighting mul, the weighted output (d,
        kept by ``index_add_``), and the token and slot indices (2 int64, one
        ``nonzero`` storage); shared experts: their hidden tensors for all T tokens;
        shared gate: its sigmoid (T) and the shared output (T d).  Measured.
        """
        t = tokens(shape)
        d, e, k = self.d_model, self.n_experts, self.top_k
        tk = t * k
        out = [
            Saved("input", prod(shape), "act", "input"),
            Saved("router.scores", t * e, "act", tp_split=True),
            Saved("router.topk_indices", tk, "int64", small=True),
            Saved("router.weights", tk, "act", small=True),
            Saved("router.weights_sum", t, "act", small=True),
            Saved("experts.input", tk * d, "act", tp_split=True),
        ]
        out += ffn_hidden_saved(self.act, self.gated, tk, self.d_expert, "experts.")
        out += [
            Saved("experts.output", tk * d, "act", tp_split=True),
            Saved("experts.weight", tk, "act", small=True),
            # index_add_'s backward formula reads source.sizes() through expand_as(source),
            # so autograd keeps the whole weighted expert output
            Saved("experts.weighted_output", tk * d, "act", tp_split=True),
            Saved("experts.token_index", tk, "int64", small=True),
            Saved("experts.slot_index", tk, "int64", small=True),
        ]
        if self.n_shared != 0:
            for s in ffn_hidden_saved(self.act, self.gated, t, self.f_shared, "shared_experts."):
                out.append(replace(s, numel=s.numel * self.n_shared))
        if self.shared_gate:
            out += [
                Saved("shared_gate.sigmoid", t, "act", small=True),
                Saved("shared.output", t * d, "act"),
            ]
        return out

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"ep": self.n_experts}

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_moe import TorchMoE

        return TorchMoE(
            d_model=ev(self.d_model),
            d_expert=ev(self.d_expert),
            n_experts=ev(self.n_experts),
            top_k=ev(self.top_k),
            n_shared=ev(self.n_shared),
            d_shared=ev(self.f_shared),
            act=self.act,
            gated=self.gated,
            router_bias=self.router_bias,
            score_bias=self.score_bias,
            shared_gate=self.shared_gate,
            expert_bias=self.expert_bias,
        )
