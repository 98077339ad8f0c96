"""Qwen2-VL and Qwen2.5-VL (``Qwen2VLForConditionalGeneration`` /
``Qwen2_5_VLForConditionalGeneration``; Wang et al. 2024, "Qwen2-VL", arXiv:2409.12191; Bai et
al. 2025, "Qwen2.5-VL", arXiv:2502.13923): a vision transformer over image patches, a patch
merger and a Qwen2 language model, two parts of one model.

The ``vision`` part reads the patches as transformers' processor gives them, one row per image:
``[batch * images, image_patches, in_chans x temporal_patch_size x patch_size^2]``
(``pixel_values``, one row per 14 x 14 x 2 patch, every image's patches in one sequence that
attention splits per image by ``cu_seqlens``), so the 3-d patch convolution (kernel = stride =
the patch) is a bias-free ``linear`` over one patch (the same weight, ``embed_dim x 3 x 2 x 14
x 14``). Its blocks are pre-norm encoder layers (fused qkv with bias and ``proj``: written as
``attention``, same counts); rotary positions have no parameters. The merger normalises, joins
each 2 x 2 group of patches (``merge_tokens(spatial_merge_size^2)``) and projects them with a
two-layer MLP to the language model's width. Qwen2.5-VL: RMSNorm, a gated MLP with biases
(``intermediate_size``), window attention in most blocks (no parameters of its own),
``out_hidden_size``. The ``text`` part is the Qwen2 language model (``text_config``, or the
top-level fields of the older flat files); its ``seq_len`` counts the merged image tokens
(``image_patches / 4`` per image)."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.families.llava import IMAGES, language_model
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


def _vision(w: MemWriter, c: HFConfig, v: HFConfig, v25: bool) -> tuple[list[str], str]:
    d = w.sym("vision_embed_dim", v.int("hidden_size" if v25 else "embed_dim", 1280))
    heads = w.sym("vision_num_heads", v.int("num_heads", 16))
    depth = w.sym("vision_depth", v.int("depth", 32))
    chans = w.sym("vision_in_chans", v.int("in_chans", v.int("in_channels", 3)))
    patch = w.sym("vision_patch_size", v.int("patch_size", 14))
    tps = w.sym("vision_temporal_patch_size", v.int("temporal_patch_size", 2))
    merge = w.sym("vision_spatial_merge_size", v.int("spatial_merge_size", 2))
    w.sym("image_patches", 1024, "patches of one image (448 x 448 px: 32 x 32); workload")
    norm = "rmsnorm" if v25 else "layernorm"
    attn = call("attention", "attn", d, heads=heads, causal=False)
    if v25:
        ffn_size = w.sym("vision_intermediate_size", v.int("intermediate_size", 3420))
        ffn = call("gated_mlp", "mlp", d, ffn_size, act=v.act("hidden_act", "silu"), bias=True)
        out = w.sym("vision_out_hidden_size", v.int("out_hidden_size", 3584))
    else:
        ratio = w.sym("vision_mlp_ratio", v.int("mlp_ratio", 4))
        ffn = call("mlp", "mlp", d, f"{d} * {ratio}", act=v.act("hidden_act", "quick_gelu"))
        out = w.sym("vision_hidden_size", v.int("hidden_size", c.int("hidden_size", 3584)))
    block = w.block(
        "vision_block",
        [residual(call(norm, "norm1", d), attn), residual(call(norm, "norm2", d), ffn)],
    )
    wide = f"{d} * {merge}^2"
    lines = [
        call("linear", "patch_embed", f"{chans} * {tps} * {patch}^2", d, bias=False)
        + "  # Conv3d over one patch",
        *w.stack([block], count=depth, name="blocks", indent=""),
        call(norm, "ln_q", d) + "  # merger",
        call("merge_tokens", None, f"{merge}^2"),
        call("linear", "merger_0", wide, wide),
        "gelu",
        call("linear", "merger_2", wide, out),
    ]
    # one row of patches per image: transformers flattens every image's patches into one
    # sequence but attends within each image (cu_seqlens; the eager path splits by them)
    return lines, f"[{IMAGES}, image_patches, {chans} * {tps} * {patch}^2]"


def _qwen_vl(c: HFConfig, hf_class: str, v25: bool) -> MemWriter:
    w = MemWriter(c, c.model_type, hf_class)
    w.note(
        "Two parts: `vision` (the patch transformer and its merger, run once per image: batch x "
        "images rows of image_patches, no KV cache) and `text` (the Qwen2 language model, "
        "whose seq_len includes the merged image tokens, image_patches / 4 per image)."
    )
    v = HFConfig(dict(c.data.get("vision_config") or {}), c.filename)
    if not c.has("text_config"):  # the older flat files: the language model's fields on top
        flat = {k: val for k, val in c.data.items() if k != "vision_config"}
        c = HFConfig({**c.data, "text_config": {**flat, "model_type": "qwen2"}}, c.filename)
    else:
        c.data["text_config"] = {**c.data["text_config"], "model_type": "qwen2"}
    vision, shape = _vision(w, c, v, v25)
    # the workload's image: image_patches (1024) merged spatial_merge_size^2 at a time
    m = v.int("spatial_merge_size", 2)
    text, _ = language_model(w, c, "qwen2", 1024 // (m * m))
    w.part("vision", shape, vision)
    w.part("text", "[batch, seq_len]", text)
    return w


@register("qwen2_vl")
def qwen2_vl(c: HFConfig) -> MemWriter:
    return _qwen_vl(c, "Qwen2VLForConditionalGeneration", v25=False)


@register("qwen2_5_vl")
def qwen2_5_vl(c: HFConfig) -> MemWriter:
    return _qwen_vl(c, "Qwen2_5_VLForConditionalGeneration", v25=True)
