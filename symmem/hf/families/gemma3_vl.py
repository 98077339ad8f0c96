"""Gemma-3 with its vision tower (``Gemma3ForConditionalGeneration``; Gemma Team 2025,
"Gemma 3 Technical Report", sec. 2.1): a SigLIP vision encoder, a projector and the Gemma-3
language model, two parts of one model (nested ``vision_config`` / ``text_config``).

The ``vision`` part is transformers' ``SiglipVisionModel`` without its pooling head
(``vision_use_head = false``), then ``Gemma3MultiModalProjector``: the patch tokens averaged
down to ``mm_tokens_per_image`` (an ``AvgPool2d`` over the patch grid: written as a 1-d
average over as many tokens, the same counts and shapes), ``mm_soft_emb_norm`` (an RMSNorm)
and ``mm_input_projection_weight`` (vision width x text width, a bias-free ``linear``).  The
``text`` part is the ``gemma3_text`` family, with ``Gemma3TextConfig``'s defaults where the
file leaves fields out; its ``seq_len`` counts ``mm_tokens_per_image`` tokens per image."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.families.clip import sub
from symmem.hf.families.llava import IMAGES, language_model
from symmem.hf.families.vit import vision_tower
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("gemma3")
def gemma3(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gemma3", "Gemma3ForConditionalGeneration")
    w.note(
        "Two parts: `vision` (SigLIP and the projector, run once per image: batch x images, "
        "no KV cache) and `text` (the Gemma-3 language model, whose seq_len includes the "
        "image tokens of its images)."
    )
    v = sub(c, "vision_config")
    if not v.has("hidden_act"):
        v.data["hidden_act"] = "gelu_pytorch_tanh"  # SiglipVisionConfig's default
    v.data.setdefault("hidden_size", 1152)
    v.data.setdefault("intermediate_size", 4304)
    v.data.setdefault("num_hidden_layers", 27)
    v.data.setdefault("num_attention_heads", 16)
    v.data.setdefault("image_size", 896)
    v.data.setdefault("patch_size", 14)
    vision, shape = vision_tower(
        w, v, "vision_", cls=False, conv_bias=True, pre_norm=False, batch=IMAGES
    )
    text, hidden = language_model(w, c, "gemma3_text", c.int("mm_tokens_per_image", 256))
    w.sym("mm_tokens_per_image", c.int("mm_tokens_per_image", 256))
    vd = "vision_hidden_size"
    # the kernel as a number: the patches per image over the tokens kept (4096 / 256 = 16)
    patches = (v.int("image_size") // v.int("patch_size")) ** 2
    pool = patches // c.int("mm_tokens_per_image", 256)
    vision += [
        call("layernorm", "post_layernorm", vd),
        "transpose(1, 2)",
        call("avgpool1d", "avg_pool", pool) + "  # AvgPool2d over the patch grid",
        "transpose(1, 2)",
        call("rmsnorm", "mm_soft_emb_norm", vd),
        call("linear", "mm_input_projection", vd, hidden, bias=False),
    ]
    w.part("vision", shape, vision)
    w.part("text", "[batch, seq_len]", text)
    return w
