"""Number formats as data: bytes per element, training precision presets, weight quantization.

Everything here is a named preset with its source; :mod:`symmem.memory`
applies them once.  docs/memory.md lists every preset and formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from symmem import dtypes
from symmem.errors import OptionError

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


@dataclass(frozen=True)
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
            "Transformer Engine fp8_model_init: weights kept only in FP8, fp32 master weights in "
            "the optimizer; activations between GEMMs stay bf16 here",
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


@dataclass(frozen=True)
class Quant:
    """Weight-only quantization of the matrices: ``bits`` per weight plus
    ``group_bytes`` of scales (and zero points) per group of ``group_size``
    consecutive weights (``group_size = None``: one group per output row)."""

    name: str
    bits: int
    group_size: int | None
    group_bytes: sympy.Rational
    #: bytes per group with double quantization (QLoRA), or None when it does not apply
    double_quant_group_bytes: sympy.Rational | None
    source: str

    @property
    def bytes_per_weight(self) -> sympy.Rational:
        return sympy.Rational(self.bits, 8)


QUANTS: dict[str, Quant] = {
    q.name: q
    for q in (
        Quant(
            "int8",
            8,
            None,
            sympy.Integer(4),
            None,
            "LLM.int8() (Dettmers et al. 2022, Section 3.2, vector-wise quantization): int8 "
            "weights, one fp32 absmax scale per output row (bitsandbytes Int8Params.SCB); a "
            "group size gives one fp32 scale per group",
        ),
        Quant(
            "int4",
            4,
            128,
            sympy.Rational(5, 2),
            None,
            "GPTQ (Frantar et al. 2023) / AWQ (Lin et al. 2024) as AutoGPTQ packs them: 4-bit "
            "weights, per group of 128 an fp16 scale (2 bytes) and a 4-bit zero point packed "
            "into int32 qzeros (0.5 byte)",
        ),
        Quant(
            "nf4",
            4,
            64,
            sympy.Integer(4),
            1 + sympy.Rational(4, 256),
            "QLoRA (Dettmers et al. 2023, Section 3): NormalFloat4 weights, one fp32 absmax per "
            "block of 64 (0.5 bit/parameter); double quantization stores the absmax in 8 bits "
            "with one fp32 constant per 256 blocks: 8/64 + 32/(64*256) = 0.127 bit/parameter",
        ),
        Quant(
            "int4-sym",
            4,
            128,
            sympy.Integer(2),
            None,
            "symmetric GPTQ / compressed-tensors w4a16 as vLLM's Marlin kernels hold them "
            "(gptq_marlin.py, marlin_utils.py): 4-bit weights repacked, one fp16/bf16 scale per "
            "group "
            "of 128, no zero points (a symmetric scheme has none)",
        ),
        Quant(
            "fp8",
            8,
            None,
            sympy.Integer(4),
            None,
            "FP8 (e4m3) weights, one fp32 scale per output channel (compressed-tensors "
            "strategy=channel; a per-tensor scale is smaller still): vLLM fp8.py / "
            "compressed_tensors_w8a8_fp8.py",
        ),
        Quant(
            "fp8-block",
            8,
            128 * 128,
            sympy.Integer(4),
            None,
            "block-wise FP8 (DeepSeek-V3, Qwen3-*-FP8: quantization_config.weight_block_size "
            "[128, 128]): e4m3 weights, one fp32 scale_inv per 128x128 block (vLLM fp8.py, "
            "weight_scale_inv)",
        ),
        Quant(
            "mxfp4",
            4,
            32,
            sympy.Integer(1),
            None,
            "OCP Microscaling MXFP4 (gpt-oss): e2m1 weights, one e8m0 (1-byte) scale per block "
            "of 32 "
            "(OCP MX spec v1.0, Section 5; vLLM mxfp4.py)",
        ),
    )
}


def quant(name: str) -> Quant:
    if name not in QUANTS:
        raise OptionError(f"unknown quantization '{name}': valid names are {', '.join(QUANTS)}")
    return QUANTS[name]
