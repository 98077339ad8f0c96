"""One build of the memory model: the configuration, the layers' places, and what the rooms share.

The rooms (:mod:`.states`, :mod:`.activations`, :mod:`.inference`) read a
:class:`Build` and add their terms to its per-layer rows and notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sympy

from symmem.activations import ActPolicy, dtype_bytes
from symmem.constraints import Constraint, divides
from symmem.errors import OptionError
from symmem.graph import MTP_SYMBOL, LayerGraph, evaluator
from symmem.layers.base import ParamTensor, Saved
from symmem.memory.config import Knobs, MemoryConfig
from symmem.memory.placement import (
    Place,
    Repeat,
    Staged,
    StageSplit,
    Sum,
    group_constraint,
    output_head,
    places,
    stage_constraints,
    stage_split,
)
from symmem.memory.result import ROW_COMPONENTS
from symmem.optimizers import Optimizer
from symmem.precision import DTYPE_BYTES, Quant
from symmem.values import substitute

#: bytes of an fp32 element: master weights and gradient copies (docs/memory.md)
FP32 = DTYPE_BYTES["fp32"]


class Build:
    """The state of one memory build over a layer graph."""

    def __init__(
        self,
        graph: LayerGraph,
        values: Mapping[sympy.Symbol, sympy.Expr],
        cfg: MemoryConfig,
        opt: Optimizer,
        quant: Quant | None,
        policy: ActPolicy | None,
        knobs: Knobs,
    ) -> None:
        self.graph = graph if cfg.part is None else graph.only(cfg.part)
        graph = self.graph
        #: the numeric options, as numbers or as symbols (:class:`Knobs`)
        self.k = knobs
        self.values = mtp_values(graph, values, cfg)
        values = self.values
        self.cfg = cfg
        self.opt = opt
        self.quant = quant
        self.par = cfg.parallel
        #: more than one pipeline stage (a structural choice: it decides which terms exist)
        self.pp_on = sympy.sympify(self.par.pp) != 1
        self.places: list[Place]
        self.repeats: dict[str, Repeat]
        self.places, self.repeats = places(graph)
        self.head = output_head(self.places)
        self.policy = policy if policy is not None else self.default_policy()
        #: the policy whose dtype and device resolve the dtype classes of saved tensors
        self.bytes_policy = replace(self.policy, dtype=cfg.act_dtype, device=cfg.device)  # type: ignore[arg-type]
        self.notes: list[str] = []
        #: the LoRA targets that matched a matrix (a target that matches none is an error)
        self.lora_matched: set[str] = set()
        self.rows: dict[str, dict[str, Sum]] = {}
        #: bytes one rank keeps in host memory (offloaded states), by pipeline part
        self.host = Staged()
        #: what these options require of the model's values (tp divides the heads...), checked
        #: at its values (OptionError) and kept with the result's quantities for solve and sweep
        self.constraints: list[Constraint] = []
        self._ev = evaluator(values)
        #: the layers of each pipeline stage when they are not an even share (None: L / pp)
        self.stage_split: StageSplit | None = None
        if self.pp_on and not self.repeats:
            raise OptionError(
                "pipeline parallelism splits repeated layers over stages: the model has no repeat"
            )
        shared = next((p for p, r in self.repeats.items() if r.group.shared), None)
        if self.pp_on and shared is not None:
            # every stage that runs an iteration of a shared repeat would hold the whole set
            # of weights: not the even split of the repeated layers the stages assume
            raise OptionError(
                f"pipeline parallelism splits repeated layers over stages: repeat '{shared}' "
                "shares one set of weights across its iterations (pp = 1 only)"
            )
        self.check_divisible()

    def require(self, c: Constraint) -> None:
        """Keep ``c``; OptionError when the model's values break it."""
        message = c.violation(self._ev, self._ev.exact)  # type: ignore[attr-defined]
        if message is not None:
            raise OptionError(message)
        self.constraints.append(c)

    def check_divisible(self) -> None:
        """Megatron-LM needs tp to divide the attention heads and ep the routed experts, and
        (here) pp the iterations of each outermost repeat: an uneven split puts
        ceil(L / pp) layers on the busiest stage, which the formulas' L / pp would understate."""
        degrees = {"tp": sympy.sympify(self.par.tp), "ep": sympy.sympify(self.par.ep)}
        if self.cfg.cp_comm == "ulysses":
            # Ulysses re-shards the sequence into heads: tp x cp must divide the heads
            degrees["tp"] = degrees["tp"] * sympy.sympify(self.par.cp)
        for place in self.places:
            for opt, size in place.node.layer.parallel_sizes().items():
                degree = degrees.get(opt)
                if degree is None or degree == 1:
                    continue
                self.require(divides(size, degree, _parallel_message(opt, place.node.path, size)))
        if self.pp_on:
            self.stage_split = pipeline_split(self.repeats, self.par, self._ev)
            if self.stage_split is None:
                for c in stage_constraints(self.repeats, sympy.sympify(self.par.pp)):
                    self.require(c)

    def share(self, staged: Staged, activations: bool = False) -> sympy.Expr:
        """The busiest GPU's part of ``staged`` (:meth:`Staged.per_gpu`): activations count the
        micro-batches each stage holds; DualPipe's ranks hold two stages' states (with an uneven
        split: stage d and stage pp - 1 - d, the pair itself)."""
        k = self.k
        if not activations:
            if self.stage_split is not None and self.par.schedule == "dualpipe":
                return staged.paired(self.stage_split)
            return k.stage_copies * staged.per_gpu(self.pp_on, k.pp, 1, self.stage_split)
        factors = None
        if self.stage_split is not None:
            factors = [k.stage_flight(s) for s in range(len(self.stage_split.sizes))]
        return staged.per_gpu(self.pp_on, k.pp, k.in_flight, self.stage_split, factors)

    def default_policy(self) -> ActPolicy:
        """The rules of the configuration's implementation (``impl``: the option, else the
        model's header, else torch; :data:`symmem.policy.IMPLS`) at its attention, device,
        dropout, loss, recurrent kernel and activation dtype."""
        return ActPolicy.for_impl(
            self.cfg.impl,
            attention=self.cfg.attention,
            device=self.cfg.device,
            dropout=self.cfg.dropout,
            dtype=self.cfg.act_dtype,
            loss=self.cfg.loss,
            loss_chunks=self.cfg.loss_chunks,
            rnn=self.cfg.rnn,
        )

    # ------------------------------------------------------------ shared helpers
    def row(self, place: Place) -> dict[str, Sum]:
        key = place.node.path
        if key not in self.rows:
            self.rows[key] = {c: Sum() for c in ROW_COMPONENTS}
        return self.rows[key]

    def act_bytes(self, cls: str) -> sympy.Expr:
        """Bytes per element of a ``Saved`` dtype class (:func:`symmem.activations.dtype_bytes`)
        at the configuration's activation dtype and device."""
        return sympy.Integer(dtype_bytes(cls, self.bytes_policy))

    def split(self, path: str, saved: Saved) -> sympy.Expr:
        """Tensor parallelism splits what the layer marks ``tp_split``; sequence parallelism
        splits the rest (Korthikanti et al. 2022, Section 4.2.2); the loss is vocab-parallel
        (Megatron's vocab_parallel_cross_entropy, Korthikanti et al. Section 4.3)."""
        if saved.tp_split or self.par.sp or path == "loss":
            return self.k.tp
        return sympy.Integer(1)

    def entry_bytes(self, path: str, saved: Saved) -> sympy.Expr:
        """Context parallelism splits every saved tensor's tokens over cp ranks: each rank keeps
        its s/cp positions (ring attention and Ulysses alike; an s x s score matrix becomes
        s/cp x s: Liu et al. 2023, Jacobs et al. 2023)."""
        return saved.numel * self.act_bytes(saved.dtype) / self.split(path, saved) / self.k.cp

    def quantized(self, place: Place, t: ParamTensor) -> bool:
        """Weight-only quantization replaces the nn.Linear matrices, not the output head
        (transformers' ``get_keys_to_not_convert`` keeps the output embedding in high precision),
        nor MoE routers for the formats that keep them (:attr:`symmem.quant.Quant.routers`);
        only the experts' matrices for the formats that say so (``experts_only``: MXFP4)."""
        q = self.quant
        return (
            q is not None
            and t.matmul
            and place.node.path != self.head
            and (q.routers or not t.router)
            and (not q.experts_only or t.active is not None)
        )

    def fp8_keeps_16bit(self, place: Place, t: ParamTensor) -> bool:
        """With fp8 weights, only the GEMM matrices are fp8: every other tensor (embeddings,
        norms, biases, MoE routers, the output head) stays in bf16.  Transformer Engine's
        ``fp8_model_init`` keeps in FP8 only the weights of its GEMM modules (``te.Linear``,
        ``LayerNormLinear``, ``LayerNormMLP``; their norm weights and biases in
        ``params_dtype``); Megatron-LM builds the embedding, the output layer and the router
        outside them; DeepSeek-V3 (arXiv 2412.19437, Section 3.3.1) keeps "the embedding
        module, the output head, MoE gating modules, normalization operators" in BF16/FP32."""
        return self.cfg.weight_dtype == "fp8" and not self.te_gemm(place, t)

    def te_gemm(self, place: Place, t: ParamTensor) -> bool:
        """Is ``t`` the weight of one of Transformer Engine's GEMM modules (a matrix, not the
        output head nor a router: :meth:`fp8_keeps_16bit`)?  Those run in FP8."""
        return t.matmul and place.node.path != self.head and not t.router

    def weight_elem_bytes(self, place: Place, t: ParamTensor) -> sympy.Expr:
        """Bytes per element of a (not quantized) weight tensor."""
        return DTYPE_BYTES["bf16"] if self.fp8_keeps_16bit(place, t) else self.k.weight_bytes

    def quant_bytes(self, t: ParamTensor) -> sympy.Expr:
        q = self.quant
        if q is None:  # pragma: no cover - only called for quantized tensors
            raise OptionError("no quantization")
        if self.cfg.group_size is not None:
            self.require(group_constraint(t, self.cfg.group_size))
        out_f, in_f = t.shape
        return q.matrix_bytes(out_f, in_f, t.copies, self.cfg.group_size, self.cfg.double_quant)

    def lora_target(self, place: Place, t: ParamTensor) -> bool:
        """Is ``t`` a matrix LoRA adapts?  A target names a matrix as PEFT's
        ``target_modules`` does: by the last part of its module name (``q_proj``
        matches ``q_proj.weight`` and ``experts.q_proj.weight``; a ``linear`` layer is
        matched by its own name); ``all-linear`` is every matrix but the output head."""
        if self.cfg.lora_rank is None or not t.matmul:
            return False
        if not (t.name == "weight" or t.name.endswith(".weight")):
            return False
        stem = (
            place.node.path.rsplit(".", 1)[-1]
            if t.name == "weight"
            else t.name.removesuffix(".weight")
        )
        names = {stem, stem.rsplit(".", 1)[-1]}
        for target in self.cfg.lora_targets:
            if target == "all-linear" and place.node.path != self.head:
                self.lora_matched.add(target)
                return True
            if target in names:
                self.lora_matched.add(target)
                return True
        return False

    def encoder_only(self) -> bool:
        """A model whose attention layers are all bidirectional (``causal = false``, BERT) is
        not generated token by token: it keeps no KV cache and returns its whole output."""
        modes = [m for p in self.places if (m := p.node.layer.attends()) is not None]
        return bool(modes) and all(m == "bidirectional" for m in modes)


def mtp_values(
    graph: LayerGraph, values: Mapping[sympy.Symbol, sympy.Expr], cfg: MemoryConfig
) -> Mapping[sympy.Symbol, sympy.Expr]:
    """``values`` with the multi-token-prediction modules the configuration counts
    (:func:`symmem.memory.config.mtp_modules`) bound to the model's ``mtp_layers``; a value
    the user set (not 0) wins over the default."""
    sym = graph.symbols.get(MTP_SYMBOL)
    if cfg.mtp is None or sym is None:
        return values
    current = substitute(sym, dict(values))
    if cfg.mtp_explicit or current == 0:
        return {**values, sym: sympy.Integer(cfg.mtp)}
    return values


def pipeline_split(repeats: dict[str, Repeat], par: Any, ev: Any) -> StageSplit | None:
    """:func:`stage_split` for a configuration's pipeline at the model's values."""
    return stage_split(repeats, sympy.sympify(par.pp), par.first_layers, par.last_layers, ev.exact)


def _parallel_message(opt: str, path: str, size: sympy.Expr) -> Any:
    def message(value: Any, degree: Any) -> str:
        return f"{opt} = {degree} does not divide {size} = {value} of layer {path}"

    return message
