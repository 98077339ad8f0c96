"""LLaVA (``LlavaForConditionalGeneration``; Liu et al. 2023, "Visual Instruction Tuning";
LLaVA-1.5, Liu et al. 2024): a CLIP vision tower, a two-layer projector and a language model,
two parts of one model (nested ``vision_config`` / ``text_config``).

The ``vision`` part is transformers' ``CLIPVisionModel`` (all its layers and its
``post_layernorm`` exist, whatever ``vision_feature_layer`` reads) followed by the
``multi_modal_projector`` (``linear_1``: vision width -> text width, the activation,
``linear_2``), written on the vision stream.  The ``text`` part is the language model as its
own family writes it (``text_config.model_type``, Llama for LLaVA-1.5); its ``seq_len``
counts the image tokens too ((image_size / patch_size)^2 = 576 per image for LLaVA-1.5 at
336 px, times ``images``, the images per prompt), which replace the image placeholders in the
prompt; the vision part reads ``batch * images`` images.  Only the language model keeps a KV cache;
``--part text`` gives its memory alone."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.families.clip import sub
from symmem.hf.families.vit import vision_tower
from symmem.hf.registry import catalogue, register
from symmem.hf.writer import MemWriter, call

#: the text config classes' defaults (transformers' ``LlamaConfig``, ``Gemma3TextConfig``),
#: which the nested ``text_config`` of LLaVA-1.5 and Gemma-3 rely on
TEXT_DEFAULTS: dict[str, dict[str, object]] = {
    "llama": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "vocab_size": 32000,
    },
    "gemma3_text": {
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 262208,
        # Gemma3TextConfig's default; Gemma-3's published configs leave it out
        "max_position_embeddings": 131072,
    },
}


#: the vision part's batch in a vision-language model: every image of every prompt
#: (``images``, images per prompt, a workload symbol the writer declares with ``seq_len``)
IMAGES = "batch * images"


def language_model(
    w: MemWriter, c: HFConfig, default_type: str, image_tokens: int, drop: int = 0
) -> tuple[list[str], str]:
    """The text config's own family, grafted into ``w``: its symbols, blocks, notes and
    header options; returns its body lines and its hidden size's symbol.  After the token
    embedding, ``merge_image(memory = vision)`` writes the vision part's output over the image
    tokens' rows (transformers' ``inputs_embeds.masked_scatter(special_image_mask,
    image_features)``): the part the caller writes must be named ``vision``; ``image_tokens``
    (one image's features, at the config's image size) join the default ``seq_len``, ``drop``
    leading tokens of each image are left out of the merge (LLaVA's class token).  The
    caller's vision part reads ``batch * images`` images (:data:`IMAGES`): the merge writes
    ``batch x images x image_tokens`` features, ``images x image_tokens`` per prompt."""
    t = sub(c, "text_config")
    t.model_type = t.model_type or default_type
    t.data.setdefault("model_type", t.model_type)
    if t.model_type in TEXT_DEFAULTS:
        for key, value in TEXT_DEFAULTS[t.model_type].items():
            if not t.has(key):
                t.data[key] = value
                c.defaults_applied.append(f"text_config.{key} = {value}")
    table = catalogue()
    if t.model_type not in table:
        raise c.unsupported("text_config", f"language model type '{t.model_type}' is unknown")
    tw = table[t.model_type](t)
    for name, value in tw.symbols.items():
        w.symbols.setdefault(name, value)
    w.blocks.update(tw.blocks)
    w.context = tw.context_length()
    w.notes += [f"language model ({tw.hf_class}): {n}" for n in tw.notes]
    w.header_options += [o for o in tw.header_options if o not in w.header_options]
    hidden = "hidden_size" if "hidden_size" in tw.symbols else next(iter(tw.symbols))
    lines = [ln[2:] if ln.startswith("  ") else ln for ln in tw.body]
    at = next((i + 1 for i, ln in enumerate(lines) if ln.startswith("embedding ")), None)
    if at is None:  # every language model family starts with its token embedding
        raise c.unsupported("text_config", "the language model has no token embedding")
    merge = call("merge_image", "image_features", memory="vision", drop=drop or None)
    w.image_tokens = image_tokens
    lines.insert(at, merge + "  # image features over the image tokens (masked_scatter)")
    return lines, hidden


@register("llava")
def llava(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "llava", "LlavaForConditionalGeneration")
    w.note(
        "Two parts: `vision` (the CLIP vision tower and the projector, run once per image: "
        "batch x images, no KV cache) and `text` (the language model, whose seq_len includes "
        "the image tokens of its images)."
    )
    v = sub(c, "vision_config")
    if not v.has("hidden_act"):
        v.data["hidden_act"] = "quick_gelu"  # CLIPVisionConfig's default
    vision, shape = vision_tower(
        w, v, "vision_", cls=True, conv_bias=False, pre_norm=True, batch=IMAGES
    )
    # vision_feature_select_strategy "default" drops the class token ([:, 1:]), "full" keeps it
    drop = int(c.str("vision_feature_select_strategy", "default") == "default")
    patches = (v.int("image_size", 224) // v.int("patch_size", 16)) ** 2
    text, hidden = language_model(w, c, "llama", patches + 1 - drop, drop)
    layer = c.raw("vision_feature_layer", -2)
    n_layers = len(layer) if isinstance(layer, list) else 1
    width = "vision_hidden_size" if n_layers == 1 else f"{n_layers} * vision_hidden_size"
    bias = c.bool("multimodal_projector_bias", True)
    act = c.act("projector_hidden_act", "gelu")
    vision += [
        call("layernorm", "post_layernorm", "vision_hidden_size"),
        call("linear", "linear_1", width, hidden, bias=bias) + "  # multi_modal_projector",
        act,
        call("linear", "linear_2", hidden, hidden, bias=bias),
    ]
    w.part("vision", shape, vision)
    w.part("text", "[batch, seq_len]", text)
    return w
