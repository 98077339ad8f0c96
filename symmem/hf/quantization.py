"""What a config.json says about its checkpoint's numbers: ``torch_dtype`` and
``quantization_config``, as the model-header options of the ``.mem`` file.

``dtype = bf16``, ``quantization = "awq"``, ``group_size = 128``, ``double_quant = true``:
the memory model's defaults come from them (docs/memory.md, "Defaults from the model").
Each ``quant_method`` is read the way its loader reads it (the field names below are those
of transformers' ``AwqConfig``, ``GPTQConfig``, ``BitsAndBytesConfig``,
``CompressedTensorsConfig``, ``FbgemmFp8Config``, ``FineGrainedFP8Config``,
``Mxfp4Config``); a configuration no registered format stores the same way is named in a
comment and not declared, so the weights are counted in the checkpoint's dtype.
"""

from __future__ import annotations

from typing import Any

from symmem.hf.config import HFConfig

#: torch_dtype names -> symmem's
DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def declarations(cfg: HFConfig) -> tuple[list[str], list[str]]:
    """(model-header options, comment lines) for the config's dtype and quantization."""
    opts: list[str] = []
    notes: list[str] = []
    data = cfg.data
    raw = data.get("torch_dtype", data.get("dtype"))
    if isinstance(raw, str):
        dtype = DTYPES.get(raw.removeprefix("torch."))
        if dtype is not None:
            opts.append(f"dtype = {dtype}")
            notes.append(f"checkpoint dtype: {raw} (dtype = {dtype}: the memory model's default)")
        else:
            notes.append(
                f"checkpoint dtype: {raw} (not declared: symmem knows {', '.join(DTYPES)})"
            )
    q = data.get("quantization_config")
    if isinstance(q, dict):
        name, group, extra, why = format_of(q)
        method = q.get("quant_method", "unknown")
        if name is None:
            notes.append(
                f"quantization_config: {method}: {why}; not declared, weights counted in the "
                "checkpoint dtype"
            )
        else:
            opts.append(f'quantization = "{name}"')
            if group is not None:
                opts.append(f"group_size = {group}")
            opts += extra
            notes.append(
                f"quantization_config: {method}"
                + (f" ({why})" if why else "")
                + f" -> quantization = {name} (docs/memory.md: the format's bytes)"
            )
    return opts, notes


def format_of(q: dict[str, Any]) -> tuple[str | None, int | None, list[str], str]:
    """(format name, group size, more header options, a word on how it was read)."""
    method = str(q.get("quant_method", "")).lower()
    bits = q.get("bits", q.get("w_bit"))
    group = q.get("group_size", q.get("q_group_size"))
    if method == "awq":
        if bits != 4:
            return None, None, [], f"{bits}-bit AWQ is not a format symmem knows"
        if q.get("zero_point") is False:
            return None, None, [], "AWQ without zero points is not a format symmem knows"
        return "awq", _group(group, 128), [], f"4-bit, group {group}, {q.get('version', 'gemm')}"
    if method == "gptq":
        if bits not in (4, 8):
            return None, None, [], f"{bits}-bit GPTQ is not a format symmem knows"
        if not isinstance(group, int) or group < 1:
            return None, None, [], f"GPTQ group_size {group} (one group per row) is not modelled"
        return ("gptq" if bits == 4 else "gptq-int8"), _group(group, 128), [], f"{bits}-bit"
    if method == "bitsandbytes":
        if q.get("load_in_8bit"):
            return "int8", None, [], "load_in_8bit"
        if q.get("load_in_4bit"):
            extra = ["double_quant = true"] if q.get("bnb_4bit_use_double_quant") else []
            return "nf4", None, extra, f"load_in_4bit, {q.get('bnb_4bit_quant_type', 'fp4')}"
        return None, None, [], "neither load_in_8bit nor load_in_4bit"
    if method == "fbgemm_fp8":
        return "fbgemm-fp8", None, [], ""
    if method == "fp8":
        block = q.get("weight_block_size")
        if block == [128, 128]:
            return "fp8-block", None, [], "weight_block_size [128, 128]"
        return None, None, [], f"fp8 with weight_block_size {block} is not a format symmem knows"
    if method == "mxfp4":
        return (
            "mxfp4",
            None,
            [],
            "the MoE experts (the format's rule: attention, routers, head 16-bit)",
        )
    if method == "compressed-tensors":
        return _compressed(q)
    return None, None, [], f"quant_method {method!r} is not a format symmem knows"


def _compressed(q: dict[str, Any]) -> tuple[str | None, int | None, list[str], str]:
    """compressed-tensors: the weights scheme of its (first) config group."""
    groups = q.get("config_groups")
    if not isinstance(groups, dict) or not groups:
        return None, None, [], "no config_groups"
    first = next(iter(groups.values()))
    w = first.get("weights") if isinstance(first, dict) else None
    if not isinstance(w, dict):
        return None, None, [], "no weights scheme"
    bits, kind, strategy = w.get("num_bits"), w.get("type"), w.get("strategy")
    group = w.get("group_size")
    fmt = q.get("format", "")
    say = f"{fmt}: {bits}-bit {kind}, {strategy} strategy"
    if bits == 8 and strategy == "channel":
        return ("fp8-channel" if kind == "float" else "int8-channel"), None, [], say
    if bits == 4 and kind == "int" and strategy == "group" and w.get("symmetric", True):
        return "w4a16", _group(group, 128), [], say
    if bits == 4 and kind == "float" and strategy == "tensor_group" and group == 16:
        return "nvfp4", None, [], say
    return None, None, [], f"{say} is not a format symmem knows"


def _group(group: Any, default: int) -> int:
    """The group size to declare (said even when it is the format's default, for the reader)."""
    if isinstance(group, int) and not isinstance(group, bool) and group >= 1:
        return group
    return default
