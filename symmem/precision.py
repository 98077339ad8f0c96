"""Number formats as data: bytes per element, training precision presets, weight quantization.

Everything here is a named preset with its source (weight quantization formats live in
:mod:`symmem.quant`, re-exported here); :mod:`symmem.memory`
applies them once.  docs/memory.md lists every preset and formula.
"""

from __future__ import annotations

import sympy

from symmem import dtypes
from symmem.errors import OptionError
from symmem.quant import NO_QUANT, QUANTS, Quant, quant
from symmem.records import record

__all__ = [
    "ACT_DTYPES",
    "DTYPE_BYTES",
    "FLOAT_DTYPES",
    "KV_DTYPES",
    "NO_QUANT",
    "PRECISIONS",
    "PRECISION_ALIASES",
    "QUANTS",
    "STATE_DTYPES",
    "Precision",
    "Quant",
    "check_dtype",
    "dtype_bytes",
    "precision",
    "quant",
]

#: bytes per element of each storage dtype (derived from :mod:`symmem.dtypes`: IEEE 754
#: binary32 / binary16, bfloat16, FP8 E4M3/E5M2 (Micikevicius et al. 2022), int8; 4-bit
#: formats pack two values per byte); the dtypes of masks and ids (bool, int64) are not storage
DTYPE_BYTES: dict[str, sympy.Rational] = {
    d.name: d.bytes for d in dtypes.REGISTRY if d.uses - {"saved"}
}

#: dtypes a tensor that is computed with (weights, gradients) may have
FLOAT_DTYPES = dtypes.names("weights")
#: dtypes of a KV cache (int8 / fp8 caches: vLLM ``kv_cache_dtype``; scale overhead not modelled)
KV_DTYPES = dtypes.names("kv_cache")
#: dtypes of optimizer state
STATE_DTYPES = dtypes.names("optimizer_state")
#: dtypes of activations (the ``"act"`` class of saved tensors)
ACT_DTYPES = dtypes.names("activations")


def dtype_bytes(
    name: str, allowed: tuple[str, ...] = tuple(DTYPE_BYTES), what: str = "dtype"
) -> sympy.Rational:
    """Bytes per element of ``name``; OptionError listing the valid names otherwise."""
    if name not in allowed:
        raise OptionError(f"unknown {what} '{name}': valid names are {', '.join(allowed)}")
    return DTYPE_BYTES[name]


def check_dtype(name: str, allowed: tuple[str, ...], what: str) -> str:
    dtype_bytes(name, allowed, what)
    return name


@record
class Precision:
    """A training / inference precision: the dtype of each kind of tensor.

    ``weights``: the copy the forward pass reads; ``grads``: the gradients the
    backward pass writes; ``master``: an fp32 copy of the weights kept by the
    optimizer (mixed precision, Micikevicius et al. 2018, Section 3.1);
    ``activations``: the dtype of activations (what ``Saved`` class ``act`` means).
    """

    name: str
    weights: str
    grads: str
    master: bool
    activations: str
    source: str
    #: Transformer Engine's FP8 training extras: bytes of FP8 copies kept per element of each
    #: GEMM weight besides the weights (the FP8 cast and, for the backward's dgrad GEMM on
    #: Hopper, its transpose), and whether each GEMM keeps its delayed-scaling state (amax
    #: history and scales, fp32).  docs/memory.md, "Precision"
    fp8_copies: int = 0
    fp8_meta: bool = False


#: named presets; every field can be overridden one by one (``weight_dtype``, ``grad_dtype``, ...)
PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision(
            "fp32",
            "fp32",
            "fp32",
            False,
            "fp32",
            "PyTorch's default dtype; the seed's 4 bytes per parameter",
        ),
        Precision("fp16", "fp16", "fp16", False, "fp16", "pure fp16: model.half(), no master copy"),
        Precision(
            "bf16",
            "bf16",
            "bf16",
            False,
            "bf16",
            "pure bf16: model.to(torch.bfloat16), no master copy",
        ),
        Precision(
            "mixed-fp16",
            "fp16",
            "fp16",
            True,
            "fp16",
            "Micikevicius et al. 2018; ZeRO (Rajbhandari et al. 2020) Section 3.1: fp16 weights "
            "and gradients, fp32 master weights",
        ),
        Precision(
            "mixed-bf16",
            "bf16",
            "bf16",
            True,
            "bf16",
            "as mixed-fp16 with bf16 (Megatron-LM --bf16 without its fp32 gradient buffer)",
        ),
        Precision(
            "amp-fp16",
            "fp32",
            "fp32",
            False,
            "fp16",
            "torch.autocast(dtype=float16): fp32 weights and gradients, fp16 activations",
        ),
        Precision(
            "amp-bf16",
            "fp32",
            "fp32",
            False,
            "bf16",
            "torch.autocast(dtype=bfloat16): fp32 weights and gradients, bf16 activations",
        ),
        Precision(
            "fp8",
            "fp8",
            "bf16",
            True,
            "bf16",
            "Transformer Engine fp8_model_init: GEMM weights kept only in FP8 (embeddings, norms, "
            "biases, routers and the output head in bf16), fp32 master weights in the optimizer; "
            "activations between GEMMs stay bf16 here",
        ),
        Precision(
            "mixed-fp8",
            "bf16",
            "bf16",
            True,
            "bf16",
            "Transformer Engine fp8_autocast (DelayedScaling) over bf16 weights with fp32 master "
            "weights (Megatron-LM --bf16 --fp8-format hybrid): each GEMM weight's FP8 cast (1 "
            "byte, the workspace TE caches across micro-batches) and its transpose for the "
            "backward (1 byte: Hopper's FP8 GEMM takes TN layouts only), and the amax history and "
            "scales of "
            "each GEMM's 5 FP8 tensors",
            fp8_copies=2,
            fp8_meta=True,
        ),
        Precision(
            "fp8-te",
            "fp8",
            "bf16",
            True,
            "bf16",
            "as fp8 (Transformer Engine fp8_model_init: GEMM weights stored in FP8) with TE's "
            "training extras: each GEMM weight's FP8 transpose for the backward (1 byte) and the "
            "amax history and scales of each GEMM's 5 FP8 tensors",
            fp8_copies=1,
            fp8_meta=True,
        ),
    )
}
#: short names
PRECISION_ALIASES = {"mixed": "mixed-bf16", "amp": "amp-bf16"}


def precision(name: str) -> Precision:
    name = PRECISION_ALIASES.get(name, name)
    if name not in PRECISIONS:
        valid = [*PRECISIONS, *PRECISION_ALIASES]
        raise OptionError(f"unknown precision '{name}': valid names are {', '.join(valid)}")
    return PRECISIONS[name]
