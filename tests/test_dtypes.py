"""symmem.dtypes: the one dtype registry, and the tables derived from it."""

from __future__ import annotations

import pytest
import sympy

from symmem import dtypes, precision
from symmem.errors import OptionError
from symmem.policy import ActPolicy


def test_bytes_are_exact() -> None:
    # IEEE 754 binary32 / binary16, bfloat16: 4, 2, 2 bytes; packed 4-bit formats: 1/2
    assert dtypes.nbytes("fp32") == 4 and dtypes.nbytes("bf16") == 2
    assert dtypes.nbytes("nf4") == sympy.Rational(1, 2)
    assert all(isinstance(d.bytes, sympy.Rational) for d in dtypes.REGISTRY)


def test_aliases_resolve_to_one_dtype() -> None:
    assert dtypes.canonical("float32") == "fp32"
    assert dtypes.canonical("bfloat16") == "bf16"
    assert dtypes.get("half") is dtypes.DTYPES["fp16"]
    names = [n for d in dtypes.REGISTRY for n in (d.name, *d.aliases)]
    assert len(names) == len(set(names))


def test_uses_filter_and_errors_list_valid_names() -> None:
    assert dtypes.names("activations") == ("fp32", "fp16", "bf16")
    with pytest.raises(OptionError, match="valid names are fp32, fp16, bf16"):
        dtypes.get("int8", "activations", "activation dtype")
    with pytest.raises(OptionError, match="unknown dtype 'fp7'"):
        dtypes.get("fp7")


def test_torch_names_are_torch_dtypes() -> None:
    torch = pytest.importorskip("torch")
    for d in dtypes.REGISTRY:
        if d.torch is not None:
            assert getattr(torch, d.torch).itemsize == d.bytes, d.name
    with pytest.raises(OptionError, match="no torch dtype"):
        dtypes.torch_name("int4")


def test_precision_tables_come_from_the_registry() -> None:
    # the names and values symmem.memory reads, unchanged
    assert precision.FLOAT_DTYPES == ("fp32", "fp16", "bf16", "fp8") == dtypes.names("grads")
    assert precision.KV_DTYPES == ("fp32", "fp16", "bf16", "fp8", "int8")
    assert precision.STATE_DTYPES == ("fp32", "fp16", "bf16")
    assert list(precision.DTYPE_BYTES) == ["fp32", "fp16", "bf16", "fp8", "int8", "int4", "nf4"]
    for name, b in precision.DTYPE_BYTES.items():
        assert b == dtypes.nbytes(name)


def test_policy_takes_registry_names_and_aliases() -> None:
    assert ActPolicy(dtype="bfloat16").dtype == "bf16"
    assert ActPolicy(dtype="bf16").low_precision and not ActPolicy(dtype="float32").low_precision
    with pytest.raises(OptionError, match="activation dtype"):
        ActPolicy(dtype="fp8")
