"""Activations kept for backward, walked over a whole :class:`~symmem.graph.LayerGraph`.

Each layer kind says what *it* saves (``Layer.activations(shape, policy)`` ->
:class:`~symmem.layers.base.Saved`, counts in elements with a dtype class);
this module strings them together in execution order and counts every tensor
once: a tensor saved by two consecutive ops (``ref="output"`` of one layer,
``ref="input"`` of the next, or ``ref="input"`` of two layers reading the same
stream, as q/k/v projections or the branches of a ``parallel``) is one storage, and
so is a second part's output that many layers read (``ref="memory"``: the encoder output
every cross-attention layer's k/v projections save, one tensor in PyTorch).

The walk follows the graph's structure: ``residual`` adds (x + f(x) makes a new
stream tensor and saves nothing: add's backward needs no input), ``parallel``
feeds every branch the same tensor and sums the outputs (a new tensor),
``repeat`` bodies are walked once and multiplied; at a repeat's boundary the
output of iteration i is the input of iteration i+1, so a tensor saved both as
the body's output and its input is counted ``count + 1`` times, not ``2 count``.

The loss (cross-entropy over the last dimension of the model's output, as a
language model's LM head gives) is part of a training step: its saved
log-probabilities are listed with path ``"loss"``; the temporaries that are
live at the worst moment of the step but not saved (the logits, the gradient
of the log-probabilities and of the logits) are :func:`transient`.

Every rule was measured on CPU with torch 2.13 (``symmem check``,
tests/test_activations.py, tests/test_check.py); CUDA-only behaviour comes from
PyTorch's source and is cited where it is used.  docs/activations.md has the
per-kind table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import sympy

from symmem import dtypes
from symmem.graph import GroupNode, LayerGraph, LayerNode
from symmem.layers.base import Layer, Saved, prod
from symmem.policy import ACT_DTYPES, ActPolicy, Attention, Device
from symmem.records import record
from symmem.values import substitute

#: activation dtype names the policy accepts (from the registry, :mod:`symmem.dtypes`)
DTYPES = ACT_DTYPES

__all__ = [
    "DTYPES",
    "ActPolicy",
    "Attention",
    "Device",
    "SavedEntry",
    "dtype_bytes",
    "entries_bytes",
    "per_layer",
    "saved_tensors",
    "transient",
]


@record
class SavedEntry:
    """One saved tensor of the whole model.

    ``multiplicity``: how many such tensors the model keeps (the product of
    enclosing repeat counts, adjusted at repeat boundaries, see the module
    docstring).  ``repeat``: the path of the innermost enclosing ``repeat``
    group, or None; within one repeat group the multiplicities add up to
    ``count`` per-iteration sets, plus at most one tensor at the group's edge
    (the input of iteration 0 or the output of the last), which a
    full-recompute model can keep as the block input.
    """

    path: str
    saved: Saved
    multiplicity: sympy.Expr
    repeat: str | None

    @property
    def numel(self) -> sympy.Expr:
        return self.multiplicity * self.saved.numel


# ---------------------------------------------------------------- the walk


@record
class GradFlow:
    """Which gradients a step computes when the base is frozen (LoRA, QLoRA).

    ``adapted``: (layer path, tensor name) of the matrices a LoRA adapter reads (their
    outputs need gradients); ``adapter_reads_input``: each adapter's A reads the matrix's input
    itself (its dtype is the activations': PEFT casts the input otherwise, a copy the memory
    model counts with the adapter), so that input is kept; ``keeps_input``: frozen matrices
    whose op keeps its input whenever that input needs a gradient (bitsandbytes' LLM.int8
    ``MatMul8bitLt``: ``ctx.tensors = (CAt, subA, A)`` when ``any(ctx.needs_input_grad[:2])``;
    its 4-bit ``MatMul4Bit`` keeps ``(None, B)``, no input: :attr:`symmem.quant.Quant.keeps_input`).

    PyTorch keeps an operand only for a gradient it computes (tools/autograd/derivatives.yaml:
    ``mm`` keeps ``self`` for the weight's gradient only when the weight requires grad), and a
    tensor requires grad only downstream of a parameter that does: before the first adapter
    the stream needs none (a frozen embedding keeps no ids, the first norm nothing)."""

    adapted: frozenset[tuple[str, str]] = frozenset()
    adapter_reads_input: bool = True
    keeps_input: frozenset[tuple[str, str]] = frozenset()

    def kept(self, path: str, saved: Saved, grad_in: bool) -> bool:
        """Does a frozen-base step keep ``saved`` of the layer at ``path`` whose input needs a
        gradient (``grad_in``) or not?"""
        if saved.grads is None:
            return True
        operand = "input" not in saved.grads  # the operand of the named weights' gradients
        for g in saved.grads:
            if g == "input":
                if grad_in:
                    return True
            elif operand:
                if (path, g) in self.adapted and self.adapter_reads_input:
                    return True
                if (path, g) in self.keeps_input and grad_in:
                    return True
            elif (path, g) in self.adapted:
                return True
        return False

    def output_needs_grad(self, path: str, layer: Layer, grad_in: bool) -> bool:
        """The layer's output needs a gradient: its input does, or it holds an adapted
        matrix."""
        return grad_in or any((path, t.name) in self.adapted for t in layer.tensors())


@dataclass
class _Raw:
    key: object  # tensor identity: an int for stream tensors, a unique object for "own"
    entry: SavedEntry


class _Walker:
    def __init__(
        self,
        policy: ActPolicy,
        values: Mapping[sympy.Symbol, sympy.Expr] | None = None,
        flow: GradFlow | None = None,
    ) -> None:
        self.policy = policy
        self.values = values
        self.flow = flow
        self.ids = itertools.count()
        #: the stream tensors that need a gradient (tracked under a frozen base only)
        self.needs_grad: set[int] = set()

    def new_id(self, grad: bool = False) -> int:
        new = next(self.ids)
        if grad:
            self.needs_grad.add(new)
        return new

    def group(
        self, group: GroupNode, cur: int, mult: sympy.Expr, repeat: str | None
    ) -> tuple[list[_Raw], int]:
        """Walk a group's body from the stream tensor ``cur``; return entries and the output
        tensor."""
        out: list[_Raw] = []
        for child in group.body:
            if isinstance(child, LayerNode):
                layer = child.layer
                if self.values is not None:
                    layer = layer.at_values(self.values)
                grad_in = cur in self.needs_grad
                grad_out = (
                    self.flow.output_needs_grad(child.path, layer, grad_in)
                    if self.flow is not None
                    else False
                )
                if layer.passes_through(self.policy):
                    nxt = cur
                    if grad_out:
                        self.needs_grad.add(cur)
                else:
                    nxt = self.new_id(grad_out)
                for s in layer.activations(child.in_shape, self.policy):
                    if s.small and not self.policy.small_buffers:
                        continue
                    if self.flow is not None and not self.flow.kept(child.path, s, grad_in):
                        continue
                    if s.ref == "memory":
                        # another part's output (the encoder's): one tensor for the step,
                        # kept whatever the repeats around the layer recompute
                        key: object = ("memory", layer.reads_stream())
                        entry = SavedEntry(child.path, s, sympy.Integer(1), None)
                        out.append(_Raw(key, entry))
                        continue
                    key = cur if s.ref == "input" else nxt if s.ref == "output" else object()
                    out.append(_Raw(key, SavedEntry(child.path, s, mult, repeat)))
                cur = nxt
            elif isinstance(child, GroupNode):
                entries, cur = self.node(child, cur, mult, repeat)
                out += entries
        return out, cur

    def node(
        self, g: GroupNode, cur: int, mult: sympy.Expr, repeat: str | None
    ) -> tuple[list[_Raw], int]:
        if g.kind == "repeat":
            return self.repeat(g, cur, mult)
        if g.kind == "residual":
            entries, body = self.group(g, cur, mult, repeat)
            # x + f(x): a new tensor, add saves nothing
            return entries, self.new_id(cur in self.needs_grad or body in self.needs_grad)
        if g.kind == "part":
            # a part reads its own input (token ids, an image, mel frames), not the stream
            entries, out = self.group(g, self.new_id(), mult, repeat)
            return entries, out
        if g.kind == "parallel":
            entries = []
            outs = []
            for branch in g.body:
                e, o = self.node(branch, cur, mult, repeat)  # type: ignore[arg-type]
                entries += e
                outs.append(o)
            if len(outs) == 1:
                return entries, outs[0]
            return entries, self.new_id(any(o in self.needs_grad for o in outs))
        return self.group(g, cur, mult, repeat)

    def repeat(self, g: GroupNode, cur: int, mult: sympy.Expr) -> tuple[list[_Raw], int]:
        count = sympy.sympify(g.count)
        # decided on the count's value (DeepSeek-V3's mtp_layers = 0): no iteration keeps
        # anything and the stream passes on; the multiplicities stay in the symbol
        at = substitute(count, dict(self.values)) if self.values is not None else count
        if at == 0:
            return [], cur
        if self.flow is not None and cur not in self.needs_grad and at != 1:
            # under a frozen base the first iteration may read a stream that needs no gradient
            # while the later ones read one that does: walk it on its own, then the rest
            # (a body that leaves the stream without a gradient is walked again as a whole: the
            # trial's stream ids are only left unused)
            first, out0 = self.group(g, cur, mult, g.path)
            if out0 in self.needs_grad:
                rest, after = self.repeat(replace(g, count=count - 1), out0, mult)
                return first + rest, after
        r_in = self.new_id(cur in self.needs_grad)
        entries, body_out = self.group(g, r_in, mult * count, g.path)
        after = self.new_id(body_out in self.needs_grad)
        s_in = [e for e in entries if e.key == r_in]
        s_out = [e for e in entries if e.key == body_out and body_out != r_in]
        rest = [e for e in entries if e.key not in (r_in, body_out)]
        inner = object()  # the tensors between iterations: output of i = input of i+1
        out: list[_Raw] = list(rest)
        # iteration 0's input is the tensor entering the repeat (maybe saved outside too)
        out += [_Raw(cur, replace(e.entry, multiplicity=mult)) for e in _first_per_key(s_in)]
        # the last iteration's output leaves the repeat
        out += [_Raw(after, replace(e.entry, multiplicity=mult)) for e in _first_per_key(s_out)]
        # the count - 1 tensors between iterations: saved if either side saves them
        between = _first_per_key(s_out) or _first_per_key(s_in)
        if count != 1:
            out += [_Raw(inner, replace(e.entry, multiplicity=mult * (count - 1))) for e in between]
        return out, after


def _first_per_key(raws: list[_Raw]) -> list[_Raw]:
    """All of ``raws`` share one stream tensor: keep one representative."""
    return raws[:1]


def _dedup(raws: list[_Raw]) -> list[SavedEntry]:
    """One entry per stream tensor; every "own" tensor stays.

    The first entry of a stream tensor stands for it, unless it is kept only under a
    condition (a ``Piecewise`` factor: an LSTM keeps its output as the stream only at
    batch 1) and a later one keeps it unconditionally: the tensor is then kept always."""
    seen: dict[object, int] = {}
    out: list[SavedEntry] = []
    for r in raws:
        if r.key in seen:
            i = seen[r.key]
            if _conditional(out[i]) and not _conditional(r.entry):
                out[i] = r.entry
            continue
        seen[r.key] = len(out)
        out.append(r.entry)
    return out


def _conditional(e: SavedEntry) -> bool:
    return bool(sympy.sympify(e.saved.numel).has(sympy.Piecewise))


def _output_shape(graph: LayerGraph) -> tuple[sympy.Expr, ...]:
    return tuple(graph.root.out_shape)


def saved_tensors(
    graph: LayerGraph,
    policy: ActPolicy | None = None,
    values: Mapping[sympy.Symbol, sympy.Expr] | None = None,
    flow: GradFlow | None = None,
) -> list[SavedEntry]:
    """Every tensor kept for backward by one training forward pass, in execution order.

    The loss's own saved tensors (path ``"loss"``) come last when
    ``policy.loss`` is cross-entropy.  ``values``: the model's values, at which the
    conditions on symbols are decided (a dropout probability of 0 keeps no mask);
    without them such a condition stays a ``Piecewise`` in the symbol.  ``flow``: which
    gradients a frozen-base step computes (:class:`GradFlow`); None: full training.
    """
    policy = policy or ActPolicy()
    walker = _Walker(policy, values, flow)
    start = walker.new_id()
    raws, _ = walker.group(graph.root, start, sympy.Integer(1), None)
    out = _dedup(raws)
    out += [SavedEntry("loss", s, sympy.Integer(1), None) for s in _loss_saved(graph, policy)]
    return out


def _loss_saved(graph: LayerGraph, policy: ActPolicy) -> list[Saved]:
    """``F.cross_entropy`` = log_softmax (keeps its output, n x V) + nll_loss
    (keeps the targets, int64, and the scalar total weight).  Measured.

    torchtune's ``CEWithChunkedOutputLoss`` (torchtune/modules/loss/ce_chunked_output_loss.py)
    sums ``F.cross_entropy(chunk.float(), labels, reduction="sum")`` over the chunks: every
    chunk's log-probabilities stay saved until backward (n x V in all, as above) and each
    chunk's nll_loss keeps its own scalar total weight.  Liger-Kernel's
    ``LigerFusedLinearCrossEntropyFunction`` (liger_kernel/ops/fused_linear_cross_entropy.py)
    computes the gradients in forward and keeps only ``grad_input`` (n x H, the hidden's
    dtype) and ``grad_weight`` (the head's gradient): the head then keeps no input of its
    own, and grad_input, of the same size and dtype, is counted as the head's saved input
    (:func:`saved_tensors` leaves that entry as it is); grad_weight is the head's gradient,
    counted with the gradients.  Measured (tests/test_loss.py)."""
    if policy.loss in ("none", "fused_linear_cross_entropy"):
        return []
    shape = _output_shape(graph)
    n, vocab = prod(shape[:-1]), shape[-1]
    dt = "fp32" if policy.loss_fp32 else "act"
    out = [Saved("log_probs", n * vocab, dt)]
    if policy.small_buffers:
        chunked = policy.loss == "chunked_cross_entropy"
        weights = chunk_count(shape, policy) if chunked else 1
        out += [
            Saved("targets", n, "int64", small=True),
            Saved("total_weight", sympy.sympify(weights), dt, small=True),
        ]
        if chunked:  # total_loss / total_elements keeps the int64 count of tokens
            out.append(Saved("n_tokens", sympy.Integer(1), "int64", small=True))
    return out


#: torchtune's default number of output chunks (``TransformerDecoder.num_output_chunks`` is set
#: from ``CEWithChunkedOutputLoss.num_output_chunks = 8``)
TORCHTUNE_CHUNKS = 8


def chunk_rows(shape: tuple[sympy.Expr, ...], policy: ActPolicy) -> sympy.Expr:
    """Rows (tokens) of the largest chunk of a chunked or fused loss over an output ``shape``.

    torchtune chunks the positions (``h.chunk(num_output_chunks, dim=1)``): ``torch.chunk``
    gives chunks of ceil(s / C) positions, each over the whole batch.  Liger chunks the
    n = batch x positions rows: with ``loss_chunks`` C, ceil(n / C) rows; by default its own
    rule, ``chunk_size = min(next_power_of_2(cdiv(n, cdiv(V, H))), n)`` (the logits of one
    chunk about the size of the hidden states), which needs the head's width H
    (:func:`chunk_rows_liger`)."""
    c = policy.loss_chunks
    if policy.loss == "chunked_cross_entropy":
        chunks = sympy.Integer(c or TORCHTUNE_CHUNKS)
        if len(shape) < 3:
            return sympy.ceiling(prod(shape[:-1]) / chunks)
        return prod(shape[:-2]) * sympy.ceiling(shape[-2] / chunks)
    n = prod(shape[:-1])
    return sympy.ceiling(n / (c or 1))


def chunk_rows_liger(n: sympy.Expr, vocab: sympy.Expr, width: sympy.Expr) -> sympy.Expr:
    """Liger-Kernel's default chunk: ``inc_factor = cdiv(V, H)``, ``chunk_size =
    min(next_power_of_2(cdiv(n, inc_factor)), n)`` (fused_linear_cross_entropy_forward)."""
    rows = sympy.ceiling(n / sympy.ceiling(vocab / width))
    return sympy.Min(2 ** sympy.ceiling(sympy.log(rows, 2)), n)


def chunk_count(shape: tuple[sympy.Expr, ...], policy: ActPolicy) -> sympy.Expr:
    """How many chunks ``torch.chunk`` makes (fewer than asked when they do not divide)."""
    positions = shape[-2] if len(shape) >= 3 else prod(shape[:-1])
    per = chunk_rows(shape, policy) / (prod(shape[:-2]) if len(shape) >= 3 else 1)
    return sympy.ceiling(positions / per)


def _head_width(graph: LayerGraph) -> sympy.Expr:
    """The width of the hidden states the output head reads (its input's last dimension)."""
    last = None
    for node, _ in graph.walk():
        last = node
    if last is None:
        return sympy.Integer(1)
    return sympy.sympify(last.in_shape[-1])


def transient(graph: LayerGraph, policy: ActPolicy | None = None) -> list[SavedEntry]:
    """The temporaries live, besides the saved activations, at the worst moment of a step.

    Measured on CPU with torch 2.13 (tests/test_check.py): for a model trained
    with cross-entropy on its output that moment is the backward of
    ``log_softmax``, right after the loss: the logits (the model output, in the
    activation dtype, held by the caller for the whole step), the gradient of
    the log-probabilities (``nll_loss_backward``: n x V) and the gradient of
    the logits (``log_softmax_backward_data``: n x V), the last two in fp32
    when the loss upcasts.  Without a loss only the output is listed.

    Chunked (torchtune, whose recipes ``del logits`` before backward): the larger of every
    chunk's logits (n x V, at the end of the loss's forward) and one chunk's two gradients
    (its backward runs one chunk at a time).  Fused (Liger):
    no logits exist but one chunk's, whose storage its kernel overwrites with their
    gradient, and the fp32 per-token losses (n).  Measured (tests/test_loss.py).
    """
    policy = policy or ActPolicy()
    shape = _output_shape(graph)
    n, vocab = prod(shape[:-1]), shape[-1]
    one = sympy.Integer(1)
    dt = "fp32" if policy.loss_fp32 else "act"
    if policy.loss == "fused_linear_cross_entropy":
        rows = (
            chunk_rows(shape, policy)
            if policy.loss_chunks
            else chunk_rows_liger(n, vocab, _head_width(graph))
        )
        out = [SavedEntry("loss", Saved("logits_chunk", rows * vocab, "act"), one, None)]
        if policy.small_buffers:
            out.append(SavedEntry("loss", Saved("loss_1d", n, "fp32", small=True), one, None))
        return out
    out = [SavedEntry("loss", Saved("logits", n * vocab, "act"), one, None)]
    if policy.loss == "cross_entropy":
        out += [
            SavedEntry("loss", Saved("grad_log_probs", n * vocab, dt), one, None),
            SavedEntry("loss", Saved("grad_logits", n * vocab, dt), one, None),
        ]
    elif policy.loss == "chunked_cross_entropy":
        # torchtune's recipes `del logits` before backward: the worst moment is the end of the
        # loss's forward (every chunk's logits beside every chunk's log-probabilities) or the
        # first chunk's backward (its two gradients), whichever is larger; in elements of the
        # activation dtype
        rows = chunk_rows(shape, policy)
        ratio = sympy.Rational(dtype_bytes(dt, policy), dtype_bytes("act", policy))
        worst = sympy.Max(n * vocab, 2 * ratio * rows * vocab)
        return [SavedEntry("loss", Saved("logits_or_chunk_grads", worst, "act"), one, None)]
    return out


def entries_bytes(entries: list[SavedEntry], policy: ActPolicy) -> sympy.Expr:
    """Bytes of a list of entries with the dtype classes resolved for ``policy``.

    A convenience for the check and the tests; the memory model resolves dtype
    classes itself (with tensor / sequence parallelism and recompute).
    """
    return sympy.Add(*[e.numel * dtype_bytes(e.saved.dtype, policy) for e in entries])


def dtype_bytes(cls: str, policy: ActPolicy) -> int:
    """Bytes per element of a dtype class under ``policy`` (whole bytes: every class is).

    "act": the policy's activation dtype; "mask": 1 byte on CUDA
    (``native_dropout``'s bool mask), the activation dtype on CPU (the unfused
    dropout keeps its noise tensor); any other class is a dtype of the registry
    (:mod:`symmem.dtypes`: "fp32", "bool", "int64").
    """
    match cls:
        case "act":
            name = policy.dtype
        case "mask":
            name = "bool" if policy.device == "cuda" else policy.dtype
        case _:
            if cls not in dtypes.DTYPES:
                raise ValueError(f"unknown dtype class {cls}")
            name = cls
    return int(dtypes.nbytes(name))


def per_layer(entries: list[SavedEntry]) -> Iterator[tuple[str, sympy.Expr]]:
    """(path, elements) summed per layer path, in execution order."""
    totals: dict[str, sympy.Expr] = {}
    for e in entries:
        totals[e.path] = totals.get(e.path, sympy.Integer(0)) + e.numel
    yield from totals.items()
