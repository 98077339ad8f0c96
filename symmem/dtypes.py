"""Every number format symmem knows, as data: one registry that the rest iterates.

Each :class:`DType` says its bytes per element (exact: a 4-bit format is 1/2),
the name of the matching ``torch.dtype`` (a string, so that torch stays an
optional extra), and which kinds of tensor may be stored in it (:data:`Use`).
:mod:`symmem.precision` derives its tables (``DTYPE_BYTES``, ``FLOAT_DTYPES``,
``KV_DTYPES``, ``STATE_DTYPES``) from here, :class:`symmem.policy.ActPolicy`
validates its activation dtype here, :mod:`symmem.check` finds the torch dtype
here.  Adding a format is adding one :class:`DType` line below.

This module imports only :mod:`symmem.errors` and sympy (it sits on the lowest floor).
"""

from __future__ import annotations

from typing import Literal, get_args

import sympy

from symmem.errors import OptionError
from symmem.records import record

#: the kinds of tensor a dtype may hold:
#: ``weights`` (the copy the forward pass computes with), ``grads``, ``activations``
#: (the dtype a whole forward pass computes in: what the ``"act"`` class of a saved
#: tensor means), ``kv_cache``, ``optimizer_state``, ``quantized`` (weight-only
#: quantized storage, see :data:`symmem.precision.QUANTS`), ``saved`` (tensors autograd
#: keeps that are not numbers of the model: dropout masks, token ids, class targets)
Use = Literal[
    "weights", "grads", "activations", "kv_cache", "optimizer_state", "quantized", "saved"
]
USES: tuple[Use, ...] = get_args(Use)


@record
class DType:
    """One number format.

    ``name`` is symmem's short name (``fp32``); ``aliases`` are the other names
    accepted for it (PyTorch's ``float32``...); ``torch`` is the attribute of the
    ``torch`` module that is this dtype (``None`` when PyTorch has none: packed
    4-bit formats live in uint8 tensors of half the count).
    """

    name: str
    bytes: sympy.Rational
    torch: str | None
    uses: frozenset[Use]
    aliases: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.uses) - set(USES)
        if unknown:  # pragma: no cover - a definition error, caught by the tests
            raise ValueError(f"dtype {self.name}: unknown uses {sorted(unknown)}")
        if not self.bytes > 0:  # pragma: no cover
            raise ValueError(f"dtype {self.name}: bytes must be > 0")

    def allows(self, use: Use) -> bool:
        return use in self.uses


def _d(
    name: str,
    nbytes: int | sympy.Rational,
    torch: str | None,
    uses: str,
    aliases: tuple[str, ...] = (),
    source: str = "",
) -> DType:
    return DType(name, sympy.sympify(nbytes), torch, frozenset(uses.split()), aliases, source)  # type: ignore[arg-type]


_TRAIN = "weights grads activations kv_cache optimizer_state"

#: every dtype, in the order listings show them (the order of ``precision.DTYPE_BYTES``)
REGISTRY: tuple[DType, ...] = (
    _d("fp32", 4, "float32", _TRAIN, ("float32", "float"), "IEEE 754 binary32"),
    _d("fp16", 2, "float16", _TRAIN, ("float16", "half"), "IEEE 754 binary16"),
    _d(
        "bf16",
        2,
        "bfloat16",
        _TRAIN,
        ("bfloat16",),
        "bfloat16 (Google Brain): fp32's exponent, 7-bit mantissa",
    ),
    _d(
        "fp8",
        1,
        "float8_e4m3fn",
        "weights grads kv_cache",
        ("float8_e4m3fn",),
        "FP8 E4M3 / E5M2 (Micikevicius et al. 2022); KV cache: vLLM kv_cache_dtype=fp8",
    ),
    _d(
        "int8",
        1,
        "int8",
        "kv_cache quantized",
        (),
        "LLM.int8() weights; int8 KV cache (vLLM); 8-bit optimizers' block-quantized state "
        "(symmem.optimizers)",
    ),
    _d(
        "int4", sympy.Rational(1, 2), None, "quantized", (), "GPTQ / AWQ: two 4-bit values per byte"
    ),
    _d(
        "nf4",
        sympy.Rational(1, 2),
        None,
        "quantized",
        (),
        "QLoRA NormalFloat4: two values per byte",
    ),
    _d(
        "bool",
        1,
        "bool",
        "saved",
        (),
        "torch.bool: one byte per element (dropout masks on CUDA, causal masks)",
    ),
    _d("int64", 8, "int64", "saved", ("long",), "torch.long: token ids and class targets"),
)

#: canonical name -> DType
DTYPES: dict[str, DType] = {d.name: d for d in REGISTRY}
_BY_NAME: dict[str, DType] = {n: d for d in REGISTRY for n in (d.name, *d.aliases)}


def get(name: str, use: Use | None = None, what: str = "dtype") -> DType:
    """The dtype called ``name`` (an alias works), allowed for ``use`` if given.

    OptionError listing the valid names otherwise.
    """
    d = _BY_NAME.get(name)
    if d is None or (use is not None and not d.allows(use)):
        valid = names(use) if use is not None else tuple(DTYPES)
        raise OptionError(f"unknown {what} '{name}': valid names are {', '.join(valid)}")
    return d


def canonical(name: str) -> str:
    """symmem's short name for ``name`` (``float32`` -> ``fp32``)."""
    return get(name).name


def nbytes(name: str) -> sympy.Rational:
    """Bytes per element of ``name``."""
    return get(name).bytes


def names(use: Use) -> tuple[str, ...]:
    """Canonical names of the dtypes allowed for ``use``, in registry order."""
    return tuple(d.name for d in REGISTRY if d.allows(use))


def torch_name(name: str) -> str:
    """The ``torch`` attribute for ``name`` (``getattr(torch, torch_name("bf16"))``)."""
    d = get(name)
    if d.torch is None:
        raise OptionError(f"dtype '{d.name}' has no torch dtype (it is packed storage)")
    return d.torch
