"""Shared helpers for the ``activations()`` methods of the layer kinds.

What each PyTorch op keeps for backward comes from ``tools/autograd/derivatives.yaml``
(the ``self`` / ``result`` a backward formula reads) and was measured with
``torch.autograd.graph.saved_tensors_hooks`` on torch 2.13 (see docs/activations.md).
The policy is :class:`symmem.policy.ActPolicy` (a plain value below the layers).
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from symmem.layers.base import Saved, Shape, prod
from symmem.policy import ActPolicy


def tokens(shape: Shape) -> sympy.Expr:
    """Every dimension but the last (batch x seq for a [batch, seq, d] stream)."""
    return prod(shape[:-1])


def low_precision(policy: ActPolicy) -> bool:
    """bf16 / fp16 activations (narrower than fp32, by the dtype registry): ops upcast and keep fp32
    copies."""
    return policy.low_precision


def act_fn_saved(
    act: str,
    n: sympy.Expr,
    prefix: str,
    *,
    tp_split: bool = False,
    in_ref: str = "own",
    out_ref: str = "own",
    grads: tuple[str, ...] | None = None,
) -> list[Saved]:
    """Tensors an elementwise activation keeps, for ``n`` elements.

    derivatives.yaml: relu, tanh, sigmoid read their ``result``; gelu (both
    approximations, one fused op) and silu read ``self``.  ``quick_gelu``
    (x * sigmoid(1.702 x)) keeps x and the sigmoid.  Hugging Face's
    ``gelu_new`` (NewGELUActivation: 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))))
    is built from elementwise ops: pow keeps x, tanh its result, and the last
    mul both of its factors 0.5 x and 1 + tanh(...): four tensors of n.
    ``relu2`` (squared ReLU, So et al. 2021 "Primer"; Hugging Face's
    ``ReLUSquaredActivation``: ``square(relu(x))``) keeps relu's result, which is
    also what ``square`` reads: one tensor of n (its output is the next op's input).
    ``in_ref`` / ``out_ref`` say what the activation's input / output are to the
    enclosing layer (so that a tensor saved twice is counted once); ``grads``: the
    parameters upstream of the activation's input and ``"input"`` (:attr:`Saved.grads`).
    """
    return [
        replace(x, grads=grads) for x in _act_fn_saved(act, n, prefix, tp_split, in_ref, out_ref)
    ]


def _act_fn_saved(
    act: str, n: sympy.Expr, prefix: str, tp_split: bool, in_ref: str, out_ref: str
) -> list[Saved]:
    match act:
        case "relu" | "tanh" | "sigmoid":
            return [Saved(f"{prefix}{act}.out", n, "act", out_ref, tp_split)]
        case "gelu" | "gelu_tanh" | "silu":
            return [Saved(f"{prefix}{act}.in", n, "act", in_ref, tp_split)]
        case "relu2":
            return [Saved(f"{prefix}{act}.relu", n, "act", "own", tp_split)]
        case "quick_gelu":
            return [
                Saved(f"{prefix}{act}.in", n, "act", in_ref, tp_split),
                Saved(f"{prefix}{act}.sigmoid", n, "act", "own", tp_split),
            ]
        case "gelu_new":
            return [
                Saved(f"{prefix}{act}.in", n, "act", in_ref, tp_split),
                Saved(f"{prefix}{act}.tanh", n, "act", "own", tp_split),
                Saved(f"{prefix}{act}.half_x", n, "act", "own", tp_split),
                Saved(f"{prefix}{act}.one_plus_tanh", n, "act", "own", tp_split),
            ]
    raise ValueError(f"unknown activation {act}")  # pragma: no cover


def dropping(p: sympy.Expr, policy: ActPolicy) -> sympy.Expr:
    """1 when a training dropout of probability ``p`` keeps tensors, 0 when it keeps none
    (dropout off, or p = 0), decided on p's value.

    The memory build gives each layer its dropout probabilities at the model's values
    (:meth:`symmem.layers.base.Layer.at_values`), so ``p`` is a number whenever the
    symbol has one (``--set p=0``).  A free ``p`` gives ``Piecewise((1, Ne(p, 0)), (0,
    True))``, left unevaluated (every DSL symbol is declared positive, which would
    settle ``Ne(p, 0)`` by assumption), so that a value substituted later decides it."""
    if not policy.dropout:
        return sympy.Integer(0)
    p = sympy.sympify(p)
    if not p.free_symbols:
        return sympy.Integer(0 if p == 0 else 1)
    return sympy.Piecewise((1, sympy.Ne(p, 0, evaluate=False)), (0, True), evaluate=False)


def times(saved: list[Saved], factor: sympy.Expr) -> list[Saved]:
    """``saved`` kept ``factor`` times (0, 1, or a Piecewise from :func:`dropping`): none at 0."""
    if factor == 0:
        return []
    if factor == 1:
        return list(saved)
    return [replace(x, numel=x.numel * factor) for x in saved]


def dropout_saved(
    name: str,
    n: sympy.Expr,
    p: sympy.Expr,
    policy: ActPolicy,
    *,
    tp_split: bool = False,
    core: bool = False,
    grads: tuple[str, ...] | None = None,
) -> list[Saved]:
    """The mask a training dropout keeps: nothing when p = 0 or dropout is off.

    CUDA: ``native_dropout`` keeps a bool mask (1 byte per element, dtype class
    "mask"); CPU: ``at::native::dropout`` is not fused off CUDA
    (``is_fused_kernel_acceptable`` in aten/src/ATen/native/Dropout.cpp) and
    computes ``input * noise`` whose mul keeps the noise in the activation
    dtype (measured); the memory model maps "mask" to 1 byte on CUDA and to
    the activation dtype on CPU.  ``p`` is decided at its value (:func:`dropping`).
    """
    on = dropping(p, policy)
    if on == 0:
        return []
    return [Saved(name, n * on, "mask", "own", tp_split, core, grads=grads)]


def rmsnorm_saved(
    prefix: str,
    shape: Shape,
    affine: bool,
    policy: ActPolicy,
    *,
    in_ref: str = "input",
    tp_split: bool = False,
    upstream: tuple[str, ...] | None = None,
) -> list[Saved]:
    """``torch.nn.RMSNorm`` / Hugging Face ``LlamaRMSNorm`` (composite ops, upcast to fp32).

    x.float() (no copy in fp32) -> pow keeps x -> rsqrt keeps its result
    (b*s, fp32) -> x * rstd keeps x and rstd -> weight * y keeps y.  torch's
    RMSNorm multiplies in fp32, Hugging Face multiplies ``weight * y.to(dtype)``
    (``norm_style="hf"``), so y is fp32 or the activation dtype.

    x and rstd serve the input's gradient only (``upstream``: ``"input"`` and the parameters
    before the norm, :attr:`Saved.grads`), y the weight's only (``mul`` keeps the other
    operand when this one needs a gradient): a frozen weight keeps no y.  Without
    ``upstream`` every tensor is kept whatever is frozen (an upper bound).
    """
    weight = None if upstream is None else (f"{prefix}weight",)
    n, t = prod(shape), tokens(shape)
    low = low_precision(policy)
    out = [
        Saved(
            f"{prefix}input_fp32" if low else f"{prefix}input",
            n,
            "fp32" if low else "act",
            "own" if low else in_ref,
            tp_split,
            grads=upstream,
        ),
        Saved(f"{prefix}rstd", t, "fp32", "own", tp_split, small=True, grads=upstream),
    ]
    if affine:
        hf = policy.norm_style == "hf"
        out.append(
            Saved(
                f"{prefix}normalized",
                n,
                "act" if (hf or not low) else "fp32",
                "own",
                tp_split,
                grads=weight,
            )
        )
    return out


def ffn_hidden_saved(
    act: str, gated: bool, rows: sympy.Expr, f: sympy.Expr, prefix: str
) -> list[Saved]:
    """The hidden-width tensors an MLP keeps for ``rows`` tokens, its input excluded.

    Gated (``down(act(gate(x)) * up(x))``): the activation's tensors, act's output
    and up(x) (kept by their product) and down's input; plain (``fc2(act(fc1(x)))``):
    the activation's tensors and fc2's input (shared with a relu/tanh/sigmoid output).
    """
    acts = act_fn_saved(act, rows * f, prefix, tp_split=True)
    out = list(acts)
    has_out = any(s.name.endswith(".out") for s in acts)
    if gated:
        if not has_out:
            out.append(Saved(f"{prefix}act.out", rows * f, "act", "own", True))
        out += [
            Saved(f"{prefix}up.out", rows * f, "act", "own", True),
            Saved(f"{prefix}down.input", rows * f, "act", "own", True),
        ]
    elif not has_out:
        out.append(Saved(f"{prefix}fc2.input", rows * f, "act", "own", True))
    return out


def eager_softmax_saved(
    probs: sympy.Expr,
    scores: sympy.Expr,
    dropout: sympy.Expr,
    policy: ActPolicy,
    softmax_fp32: bool | None,
    qk: tuple[str, ...] | None = None,
    v: tuple[str, ...] | None = None,
) -> list[Saved]:
    """What eager attention keeps from its softmax to ``@ v``: the probabilities (``probs``
    elements: the scores, plus a sink column where there is one; fp32 when the softmax is
    upcast under a 16-bit policy), their cast copy, which ``@ v`` keeps only without dropout
    (dropout's multiply keeps its noise on CPU or mask on CUDA, and ``@ v`` the dropout's
    output), and the dropout's mask and output (``scores`` elements).  ``softmax_fp32``: the
    layer's own setting, None for the policy's.

    ``qk`` / ``v`` (:attr:`Saved.grads`): what lies upstream of the scores and of v.  The
    softmax keeps its result and the dropout its mask for the scores' gradient (``qk``); ``@
    v`` keeps its left operand for v's gradient (``v``).  None: kept whatever is frozen."""
    on = dropping(dropout, policy)
    upcast = policy.softmax_fp32 if softmax_fp32 is None else softmax_fp32
    fp32_softmax = upcast and low_precision(policy)
    both = None if qk is None or v is None else tuple(dict.fromkeys(qk + v))
    # the softmax's result is also @ v's operand when neither a cast nor a dropout comes between
    p_grads = qk if fp32_softmax or on == 1 else both
    dt = "fp32" if fp32_softmax else "act"
    out = [Saved("probs", probs, dt, tp_split=True, core=True, grads=p_grads)]
    if fp32_softmax:
        cast = Saved("probs_cast", probs, "act", tp_split=True, core=True, grads=v)
        out += times([cast], 1 - on)
    out += dropout_saved(
        "attn_dropout.mask", scores, dropout, policy, tp_split=True, core=True, grads=qk
    )
    out += times([Saved("attn_dropout.out", scores, "act", tp_split=True, core=True, grads=v)], on)
    return out
