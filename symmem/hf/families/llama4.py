"""Llama 4's language model (``Llama4ForCausalLM`` on a ``llama4_text`` config; Meta's
Llama 4 Scout / Maverick model cards): grouped-query attention where the layers with RoPE
attend within chunks of ``attention_chunk_size`` tokens and every
``no_rope_layer_interval``-th layer (no RoPE) attends over the whole context; a sparse MoE
with one shared expert in the layers ``moe_layers`` lists (by default every
``interleave_moe_layer_step``-th), a dense SwiGLU MLP of ``intermediate_size_mlp`` in the
others.  The chunked layers' KV cache is what transformers allocates for them (its
sliding-window cache layer, at most the chunk size of tokens).

``llama4`` is the multimodal model (``Llama4ForConditionalGeneration``): a ``vision`` part,
``Llama4VisionModel`` (an unfold + bias-free linear patch embedding, a class embedding
appended after the patches, learned positions over the patches + 1 (added, no lookup),
``layernorm_pre``, pre-LayerNorm layers with biases over the patches and the class token,
``layernorm_post``, the class token dropped (``[:, :-1, :]``), then its ``vision_adapter``:
the pixel shuffle, which folds each 2 x 2 block of patches into one token of 4 x the width
at ``pixel_shuffle_ratio`` 0.5, and a two-matrix bias-free MLP with GELU after each),
followed by the ``multi_modal_projector`` (one bias-free linear to the text width); and a
``text`` part, the ``llama4_text`` family on ``text_config``."""

from __future__ import annotations

from fractions import Fraction

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder, gqa_attention
from symmem.hf.families.clip import sub
from symmem.hf.families.llava import IMAGES, language_model
from symmem.hf.families.vit import encoder_block
from symmem.hf.fields import core_sizes, rope_note
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("llama4_text")
def llama4_text(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "llama4_text", "Llama4ForCausalLM")
    core_sizes(c, w)
    n = c.int("num_hidden_layers")
    interval = c.int("no_rope_layer_interval", 4)
    rope_layers = c.raw("no_rope_layers", None) or [int((i + 1) % interval != 0) for i in range(n)]
    if len(rope_layers) != n:
        raise c.unsupported("no_rope_layers", f"it lists {len(rope_layers)} of {n} layers")
    step = c.int("interleave_moe_layer_step", 1)
    moe_layers = c.raw("moe_layers", None)
    moe_at = set(range(step - 1, n, step) if moe_layers is None else moe_layers)
    kinds = ["moe" if i in moe_at else "dense" for i in range(n)]
    # an explicit null turns chunking off (every layer attends to the whole context)
    chunk = c.opt_int("attention_chunk_size", 8192)
    windows = [bool(r) and chunk is not None for r in rope_layers]
    act = c.act("hidden_act", "silu")
    ffns: dict[str, str] = {}
    if "dense" in kinds:
        w.sym("intermediate_size_mlp", c.int("intermediate_size_mlp", 16384), "dense layers")
        ffns["dense"] = call(
            "gated_mlp", "feed_forward", "hidden_size", "intermediate_size_mlp", act=act
        )
    if "moe" in kinds:
        w.sym("intermediate_size", c.int("intermediate_size", 8192), "each expert, and shared")
        e = w.sym("num_local_experts", c.int("num_local_experts", 16))
        k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 1))
        ffns["moe"] = call(
            "moe",
            "feed_forward",
            "hidden_size",
            "intermediate_size",
            e,
            k,
            n_shared=1,
            act=act,
        )
        w.header_options.append("active_embeddings = count")
    bias = c.bool("attention_bias", False)
    attention = gqa_attention(
        c, w, kv_default=8, head_dim_default=128, qkv_bias=bias, out_bias=bias
    )
    rope_note(c, w)
    w.note(
        f"Llama 4: layers with RoPE attend within chunks of attention_chunk_size tokens "
        f"(their KV cache: at most that many); every {interval}th layer has no RoPE and "
        "attends to the whole context.  The L2 norm of q and k (use_qk_norm) has no "
        "parameters; its saved tensors, and the reference MoE's (transformers runs every "
        "expert on every token, scaled by the router), are not modelled."
    )
    hd = "head_dim" if "head_dim" in w.symbols else "hidden_size / num_attention_heads"
    build_decoder(
        c,
        w,
        Layout(),
        attention=attention,
        ffns=ffns,
        layer_ffn=kinds,
        windows=windows,
        tied=c.bool("tie_word_embeddings", False),
        before_layers=[call("rotary", "rotary_emb", hd)],
        named=True,
        window_key="attention_chunk_size",
    )
    return w


@register("llama4")
def llama4(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "llama4", "Llama4ForConditionalGeneration")
    w.note(
        "Two parts: `vision` (Llama4VisionModel, its pixel-shuffle adapter and the projector, "
        "run once per image tile: `images` counts tiles per prompt, the vision part reads "
        "batch x images; no KV cache) and `text` (the language model, whose seq_len includes "
        "the image tokens, (image_size / patch_size)^2 x pixel_shuffle_ratio^2 = 144 per tile "
        "at 336 px)."
    )
    v = sub(c, "vision_config")
    p = "vision_"
    d = w.sym(f"{p}hidden_size", v.int("hidden_size", 768))
    heads = w.sym(f"{p}num_attention_heads", v.int("num_attention_heads", 16))
    ffn = w.sym(f"{p}intermediate_size", v.int("intermediate_size", 5632))
    layers = w.sym(f"{p}num_hidden_layers", v.int("num_hidden_layers", 34))
    chans = w.sym(f"{p}num_channels", v.int("num_channels", 3))
    image = w.sym(f"{p}image_size", v.int("image_size", 448))
    patch = w.sym(f"{p}patch_size", v.int("patch_size", 14))
    ratio = Fraction(str(v.float("pixel_shuffle_ratio", 0.5)))
    if ratio <= 0 or ratio > 1 or (1 / ratio**2).denominator != 1:
        raise v.unsupported("pixel_shuffle_ratio", "1 / ratio^2 must be a whole number of tokens")
    fold = int(1 / ratio**2)
    w.sym("pixel_shuffle_tokens", fold, "patches folded into one token: 1 / pixel_shuffle_ratio^2")
    # the adapter's matrices as Llama4VisionMLP2 builds them, Linear(intermediate_size,
    # projector_input_dim) and Linear(projector_output_dim, projector_output_dim), and the
    # projector's Linear(vision_output_dim, text width): they chain only when the shuffled
    # width is intermediate_size and the three projector sizes agree (else the forward fails)
    sizes = {
        key: v.int(key, default)
        for key, default in (
            ("projector_input_dim", 4096),
            ("projector_output_dim", 4096),
            ("vision_output_dim", 7680),
        )
    }
    if v.int("intermediate_size", 5632) != fold * v.int("hidden_size", 768):
        raise v.unsupported(
            "intermediate_size",
            "the adapter's fc1 reads the pixel-shuffled width, 1 / pixel_shuffle_ratio^2 x "
            "hidden_size, which must equal intermediate_size",
        )
    if len(set(sizes.values())) != 1:
        raise v.unsupported(
            "projector_input_dim",
            "projector_input_dim, projector_output_dim and vision_output_dim differ: the "
            f"adapter and projector would not chain ({sizes})",
        )
    pin = w.sym("projector_input_dim", sizes["projector_input_dim"])
    # Llama4VisionEncoderLayer: input_layernorm, self_attn (q/k/v/o with biases), residual;
    # post_attention_layernorm, mlp (fc1, GELU, fc2, with biases), residual
    block = encoder_block(w, f"{p}layer", d, heads, ffn, "gelu", False, True)
    vision = [
        call("patchify", "patch_embedding", chans, d, patch, bias=False)
        + "  # Unfold + bias-free linear",
        # torch.cat([patches, class_embedding], dim=1): the class token is the last of the
        # (image_size / patch_size)^2 + 1 tokens every layer attends over
        call("cls_token", "class_embedding", d, at="last") + "  # after the patches",
        # hidden_state + positional_embedding_vlm: an add of the parameter (no lookup, nothing
        # saved), so a free-standing parameter of the table's shape
        call("param", "positional_embedding_vlm", f"({image} // {patch})^2 + 1", d),
        call("layernorm", "layernorm_pre", d),
        *w.stack([block], count=layers, name="layers", indent=""),
        call("layernorm", "layernorm_post", d),
        call("drop_tokens", None, at="last") + "  # hidden_state[:, :-1, :]: the class token",
        call("merge_tokens", "pixel_shuffle", "pixel_shuffle_tokens"),
        # vision_adapter.mlp (Llama4VisionMLP2): fc1 reads the shuffled width, which its
        # config names intermediate_size (equal, checked above); GELU after each matrix;
        # projector_output_dim and vision_output_dim are projector_input_dim
        call("linear", "fc1", f"pixel_shuffle_tokens * {d}", pin, bias=False),
        "gelu",
        call("linear", "fc2", pin, pin, bias=False),
        "gelu",
    ]
    tile = (v.int("image_size", 448) // v.int("patch_size", 14)) ** 2 // fold
    text, hidden = language_model(w, c, "llama4_text", tile)
    vision.append(call("linear", "linear_1", pin, hidden, bias=False) + "  # multi_modal_projector")
    w.part("vision", f"[{IMAGES}, {chans}, {image}, {image}]", vision)
    w.part("text", "[batch, seq_len]", text)
    return w
