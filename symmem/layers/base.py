"""The contract every layer kind fulfils, and the catalogue that registers them.

A layer kind is one frozen dataclass in one file under ``symmem/layers``.  Its
fields are its DSL arguments, in positional order; their annotations tell the
semantic pass how to read each argument:

=======================  ==================================================
annotation               DSL value
=======================  ==================================================
``Size``                 integer expression, must be > 0 (checked at defaults)
``NonNeg``               integer expression, must be >= 0
``Real``                 real expression (dropout p, eps...), kept exact
``bool``                 ``true`` / ``false``
``Literal["a", "b"]``    one of the names (bare word or string)
``Ref``                  the name of an earlier layer (``tie = tok``)
``Sizes`` / ``NonNegs``  one value, or a list with one per dimension (``[3, 5]``)
``X | None``             optional
=======================  ==================================================

Layers return *counts* (numbers of elements), never bytes: dtypes, optimizers,
sharding and recompute are applied once, by :mod:`symmem.memory`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from functools import reduce
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

import sympy

from symmem import constraints as c
from symmem.constraints import require
from symmem.errors import SemanticError, ShapeError
from symmem.policy import ActPolicy
from symmem.records import record
from symmem.values import substitute

if TYPE_CHECKING:  # torch is an optional extra
    import torch

Expr = sympy.Expr
Shape = tuple[sympy.Expr, ...]

Size = Annotated[sympy.Expr, "size"]
NonNeg = Annotated[sympy.Expr, "nonneg"]
Real = Annotated[sympy.Expr, "real"]
Ref = Annotated[str, "ref"]
#: one size for every spatial dimension, or a list with one per dimension (``[3, 5]``)
Sizes = Annotated[sympy.Expr | tuple[sympy.Expr, ...], "size", "per_dim"]
#: as :data:`Sizes`, each item >= 0 (padding)
NonNegs = Annotated[sympy.Expr | tuple[sympy.Expr, ...], "nonneg", "per_dim"]
#: a second input: the output shape of a named part of the model (``memory = encoder``), or a
#: shape literal (``memory = [2, 5, 16]``) for a layer on its own
Stream = Annotated[Shape, "stream"]

#: Evaluates an expression at the current default values; None if it stays symbolic.
Evaluator = Callable[[sympy.Expr], "int | float | None"]
#: Evaluates an expression to a concrete int (every symbol has a value), for to_torch.
IntEval = Callable[[sympy.Expr], int]


def prod(items: Sequence[sympy.Expr]) -> sympy.Expr:
    return reduce(lambda a, b: a * b, items, sympy.Integer(1))


@record
class ParamTensor:
    """One parameter (or buffer) tensor of a layer, possibly in ``copies`` identical copies.

    ``copies`` is for identical separate tensors such as the experts of a MoE
    layer; ``active`` is how many of those copies one token uses (``None``:
    all of them).  Shapes are kept (not just sizes) because some optimizers
    (Adafactor) keep state per matrix row and column.
    """

    name: str
    shape: Shape
    copies: sympy.Expr = sympy.Integer(1)
    active: sympy.Expr | None = None
    buffer: bool = False
    #: an embedding table read by index lookup (see the ``active_embeddings`` convention)
    lookup: bool = False
    #: the weight matrix of an ``nn.Linear``: what weight-only quantization replaces
    #: and what LoRA can adapt
    matmul: bool = False
    #: split across tensor-parallel ranks (Megatron-LM's column / row-parallel matrices,
    #: vocab-parallel embeddings); False for what stays replicated (norms, biases, routers)
    tp_split: bool = False
    #: a mixture-of-experts router (gate): most quantized checkpoints keep it unquantized
    #: (:attr:`symmem.quant.Quant.routers`)
    router: bool = False

    @property
    def numel(self) -> sympy.Expr:
        return self.copies * prod(self.shape)

    @property
    def active_numel(self) -> sympy.Expr:
        return (self.copies if self.active is None else self.active) * prod(self.shape)


@record
class Saved:
    """A tensor a layer keeps for its backward pass, counted in elements.

    ``dtype`` is a *class*, resolved to bytes by the memory model:
    ``"act"`` (the activation dtype), ``"fp32"``, ``"mask"`` (dropout mask:
    1 byte on CUDA, the activation dtype on CPU), ``"bool"`` (1 byte),
    ``"int64"``.  ``ref`` says whose tensor it is: ``"input"`` and
    ``"output"`` are the tensors flowing between consecutive layers, so a
    tensor saved by two consecutive ops is counted once; ``"memory"`` is the stream of
    another part the layer reads (:meth:`Layer.reads_stream`: a cross-attention's encoder
    output), one tensor however many layers save it; ``"own"`` is internal.
    """

    name: str
    numel: sympy.Expr
    dtype: str = "act"
    ref: str = "own"
    #: split across tensor-parallel ranks (inside attention / MLP, Megatron style);
    #: False for tensors replicated under TP (norm inputs, residual dropout masks),
    #: which sequence parallelism splits instead
    tp_split: bool = False
    #: part of the attention core (Q K^T, softmax, its dropout, @V) that
    #: selective activation recomputation (Korthikanti et al. 2022) drops
    core: bool = False
    #: a small buffer, O(b*s) or O(s^2) rather than O(b*s*h): norm statistics,
    #: log-sum-exp, token ids, boolean causal masks.  Korthikanti et al. 2022
    #: (Section 4.1) leave these out of their sbh(34 + 5as/h); ActPolicy(small_buffers=False) does
    #: too
    small: bool = False
    #: the gradients that alone need this tensor, when some parameters are frozen (LoRA): the
    #: names of this layer's parameter tensors (``"weight"``, ``"q_proj.weight"``) and
    #: ``"input"`` (the gradient of the layer's input stream).  Without ``"input"`` the tensor
    #: is the operand of those weights' own gradients (a matmul's input, which a frozen weight
    #: does not keep); with it, it is kept when the input needs a gradient or one of the named
    #: parameters lies upstream of what needs one.  None: kept whatever is frozen (an upper
    #: bound, for kinds not modelled under a frozen base).  The walk decides on values
    #: (:class:`symmem.activations.GradFlow`); full training keeps every tensor.
    grads: tuple[str, ...] | None = None


@record
class Example:
    """A small, buildable instance of a layer kind, for the docs and the generic tests.

    ``body`` is DSL layer statements (usually the kind alone, ``"linear(16, 8)"``;
    a variant may put the kind between other layers); ``input`` is the model's input
    shape with every size a number (``"[2, 3, 16]"``), so that the example can be
    built in PyTorch and measured without ``--set``.  ``note`` says what a variant
    exercises.  tests/layers/test_examples.py builds every example of every
    registered kind and compares its parameters and its saved-for-backward bytes
    with the formulas.
    """

    body: str
    input: str
    note: str = ""

    def dsl(self, name: str = "example") -> str:
        """The example as a whole DSL model."""
        return f"model {name}(input = {self.input}) {{ {self.body} }}\n"


class Layer:
    """Mixin for the frozen dataclass of a layer kind.  Subclasses set ``kind``."""

    kind: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    #: a one-line description for docs and `symmem kinds`
    summary: ClassVar[str] = ""
    #: the output is the input itself or a view of it (flatten, param): the activation
    #: walk keeps one stream tensor across the layer, so a tensor saved on both sides
    #: (relu's output, the next linear's input) is counted once (symmem.activations)
    passthrough: ClassVar[bool] = False
    #: small instances of the kind (the first is *the* example), see :class:`Example`
    examples: ClassVar[tuple[Example, ...]] = ()
    #: the names of the fields that are dropout probabilities (``dropout``'s ``p``,
    #: attention's ``dropout``...): what :meth:`without_dropout` sets to 0
    dropout_fields: ClassVar[tuple[str, ...]] = ()
    #: other fields whose value decides which tensors the layer saves (an adaptive pool's
    #: output size 1 is a mean): :meth:`at_values` gives them their numbers
    decided_fields: ClassVar[tuple[str, ...]] = ()
    #: a recurrent layer (rnn, lstm, gru): its formulas follow ATen's native cell
    #: path, so a measurement runs it with oneDNN and cuDNN off (their fused kernels
    #: keep opaque workspaces instead; docs/validation.md)
    recurrent: ClassVar[bool] = False
    #: as the model's last layer outside any repeat, this layer is the model's output
    #: head (an LM head / classifier, a linear): Megatron-LM makes it column-parallel
    #: under tensor parallelism and LoRA's "all-linear" leaves it out
    can_be_output_head: ClassVar[bool] = False

    # ---------------------------------------------------------------- formulas
    def tensors(self) -> list[ParamTensor]:
        """Parameters and buffers, with their shapes (no dtypes)."""
        return []

    def output_shape(self, shape: Shape) -> Shape:
        """Shape of the output for an input of ``shape``; raise ShapeError on a mismatch."""
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """Tensors saved for backward for an input of ``shape`` (see symmem.memory)."""
        return []

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """Elements of KV cache this layer holds for an input of ``shape`` (batch x tokens)."""
        return sympy.Integer(0)

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        """Over how many tensor-parallel ranks this layer's KV cache is split (1: replicated)."""
        return sympy.Integer(1)

    def kv_window(self) -> sympy.Expr | None:
        """The most tokens this layer's KV cache keeps (sliding-window attention); None: every
        token.  Serving engines group layers by it (vLLM's SlidingWindowSpec)."""
        return None

    def attends(self) -> str | None:
        """ "causal" or "bidirectional" for a layer that attends over the sequence, "cross" for
        one that attends over a second input (an encoder's output), else None.
        A model whose attention is all bidirectional (an encoder) keeps no KV cache."""
        return None

    def shape_requires(self, shape: Shape) -> tuple[c.Constraint, ...]:
        """What the layer requires of the values given its input ``shape``, beyond what its
        output shape can say (``merge_image``: the image features fit in the text positions);
        checked at the model's values and kept, as :meth:`validate`'s are."""
        return ()

    def reads_stream(self) -> Shape | None:
        """The shape of the other part's output this layer reads besides its input (a
        cross-attention's ``memory``), or None.  Its ``Saved(ref = "memory")`` tensors are that
        one stream: every layer reading it saves the same storage, counted once."""
        return None

    def positions(self) -> sympy.Expr | None:
        """How many sequence positions this layer holds (a learned position table), or None:
        a longer ``seq_len`` reads past the table (symmem warns)."""
        return None

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        """Sizes a parallel degree must divide ({"tp": heads}, {"ep": n_experts}), as Megatron-LM
        requires."""
        return {}

    def token_vocab(self) -> sympy.Expr | None:
        """The vocabulary when this layer reads token ids (an embedding: its input is an
        integer tensor of ids in [0, vocab), int64 in PyTorch, and its table is read by
        lookup); None for a layer whose input is values."""
        return None

    @property
    def reads_token_ids(self) -> bool:
        """The layer's input is integer token ids (see :meth:`token_vocab`)."""
        return self.token_vocab() is not None

    def without_dropout(self) -> Self:
        """The same layer with every dropout probability (:attr:`dropout_fields`) 0."""
        if not self.dropout_fields:
            return self
        zero = {name: sympy.Integer(0) for name in self.dropout_fields}
        return replace(self, **zero)  # type: ignore[type-var]

    def at_values(self, values: Mapping[sympy.Symbol, sympy.Expr]) -> Self:
        """The layer with each field that decides which tensors exist (:attr:`dropout_fields`,
        :attr:`decided_fields`) replaced by its number when it has one at ``values``, so that
        :meth:`activations` decides on the value (``p = 0`` keeps no mask) and not on the
        symbol; a free one stays (the layer keeps a ``Piecewise`` in it)."""
        names = (*self.dropout_fields, *self.decided_fields)
        if not names:
            return self

        def at(expr: sympy.Expr) -> sympy.Expr:
            value = substitute(expr, dict(values))
            if value is not expr and not value.free_symbols:
                return sympy.nsimplify(value) if value.is_Float else value
            return expr

        changes: dict[str, Any] = {}
        for name in names:
            field = getattr(self, name)
            if isinstance(field, tuple):  # a per-dimension list: each item at its value
                items = tuple(at(sympy.sympify(v)) for v in field)
                if items != field:
                    changes[name] = items
                continue
            expr = sympy.sympify(field)
            value = at(expr)
            if value is not expr:
                changes[name] = value
        return replace(self, **changes) if changes else self  # type: ignore[type-var]

    def passes_through(self, policy: ActPolicy) -> bool:
        """Is the output the input itself (or a view of it) under ``policy``?  The kinds that
        always pass the stream on say so with :attr:`passthrough`; a dropout does when it is
        off or its p is 0 (``_dropout_impl`` returns its input)."""
        return self.passthrough

    def with_policy(self, policy: ActPolicy) -> Self:
        """The layer with the choices it leaves to the policy made (an attention layer
        without its own ``impl`` takes ``policy.attention``), for ``to_torch``."""
        return self

    def validate(self, ev: Evaluator) -> None:
        """Raise SemanticError for arguments that cannot build a network (at default values)."""

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        raise NotImplementedError(f"{self.kind} has no PyTorch equivalent")

    # ---------------------------------------------------------------- helpers
    def params(self) -> sympy.Expr:
        return sympy.Add(*[t.numel for t in self.tensors() if not t.buffer])

    def arg_fields(self) -> list[str]:
        return [f.name for f in fields(self)]  # type: ignore[arg-type]

    @staticmethod
    def expect_last_dim(shape: Shape, size: sympy.Expr, what: str) -> None:
        """Raise ShapeError unless the input's last dimension is ``size``.

        The message says what is expected; the graph adds both layers and the actual shape.
        """
        if not shape or not same(shape[-1], size):
            raise ShapeError(f"expects an input of shape [..., {size}] ({what} = {size})")

    # Requirements on values: each states one :class:`symmem.constraints.Constraint`, which
    # the graph checks at the model's values and keeps, so that solve and sweep answer only
    # with values the model accepts.  ``ev`` is the graph's evaluator (or a Recorder).
    @staticmethod
    def require_integer(ev: Evaluator, expr: sympy.Expr, what: str) -> None:
        def message(v: Any) -> str:
            shown = f" ({v:g} at the given values)" if v is not None else ""
            return f"{what} = {expr} is not an integer{shown}"

        require(ev, c.whole(expr, message))

    @staticmethod
    def require_divides(ev: Evaluator, a: sympy.Expr, b: sympy.Expr, what: str) -> None:
        """Raise unless ``b`` divides ``a`` exactly (at the given values)."""
        require(
            ev, c.divides(a, b, lambda va, vb: f"{what}: {a} = {va} is not divisible by {b} = {vb}")
        )

    @staticmethod
    def require_positive(ev: Evaluator, expr: sympy.Expr, what: str) -> None:
        require(ev, c.positive(expr, lambda v: f"{what} must be positive, got {v}"))

    @staticmethod
    def require_at_most(ev: Evaluator, a: sympy.Expr, b: sympy.Expr, message: Any) -> None:
        """``a <= b``; ``message(a_value, b_value)``."""
        require(ev, c.at_most(a, b, message))

    @staticmethod
    def require_probability(ev: Evaluator, p: sympy.Expr, what: str) -> None:
        """``0 <= p < 1``."""
        require(ev, c.unit_interval(p, lambda v: f"{what} must be in [0, 1), got {v}"))


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Are two sizes provably equal?  Exact symbolic comparison."""
    if a == b:
        return True
    diff = sympy.simplify(sympy.sympify(a) - sympy.sympify(b))
    return bool(diff == 0)


def fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def ceil_div(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return sympy.ceiling(a / b)


def per_dim(value: sympy.Expr | tuple[sympy.Expr, ...], dims: int) -> tuple[sympy.Expr, ...]:
    """A :data:`Sizes` argument as one value per dimension (a scalar repeated)."""
    if isinstance(value, tuple):
        return value
    return (value,) * dims


def check_per_dim(value: Any, dims: int, what: str) -> None:
    """Raise SemanticError unless a per-dimension list has ``dims`` items."""
    if isinstance(value, tuple) and len(value) != dims:
        raise SemanticError(
            f"{what} has {len(value)} values, but the layer has {dims} spatial "
            f"dimension{'s' if dims > 1 else ''}: give one value or a list of {dims}"
        )


def conv_out(
    size: sympy.Expr,
    kernel: sympy.Expr,
    stride: sympy.Expr,
    padding: sympy.Expr,
    dilation: sympy.Expr,
) -> sympy.Expr:
    """PyTorch's output size: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return sympy.floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1


# ---------------------------------------------------------------- catalogue

_CATALOGUE: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: add a layer kind (and its aliases) to the catalogue."""
    for name in (cls.kind, *cls.aliases):
        if name in _CATALOGUE and _CATALOGUE[name] is not cls:
            raise RuntimeError(f"layer kind '{name}' registered twice")
        _CATALOGUE[name] = cls
    return cls


def registered() -> dict[str, type[Layer]]:
    """The kinds registered so far by DSL name (aliases included); :func:`symmem.layers.catalogue`
    is the whole catalogue, once every kind module has been imported."""
    return dict(_CATALOGUE)
