"""CLIP and SigLIP (``CLIPModel`` / ``SiglipModel``; Radford et al. 2021, Zhai et al. 2023):
a text tower and a vision tower, two parts of one model (nested ``text_config`` /
``vision_config``), each ending in its projection, and the contrastive ``logit_scale`` (SigLIP:
and ``logit_bias``) outside both.  Neither tower generates (CLIP's text attention is causal but
the model is a dual encoder: the vision part comes last), so no KV cache."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.families.vit import encoder_block, vision_tower
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def sub(c: HFConfig, key: str) -> HFConfig:
    """A nested config (``text_config``, ``vision_config``) read with the same file name."""
    data = c.data.get(key) or {}
    if not isinstance(data, dict):
        raise c.unsupported(key, "expected an object")
    return HFConfig(data, c.filename)


def text_tower(
    w: MemWriter,
    t: HFConfig,
    *,
    causal: bool,
    vocab: int,
    positions: int,
    act: str,
    sizes: tuple[int, int, int],
) -> list[str]:
    """A text tower; ``sizes``: the config class's default hidden size, heads, MLP size."""
    d = w.sym("text_hidden_size", t.int("hidden_size", sizes[0]))
    heads = w.sym("text_num_attention_heads", t.int("num_attention_heads", sizes[1]))
    ffn = w.sym("text_intermediate_size", t.int("intermediate_size", sizes[2]))
    layers = w.sym("text_num_hidden_layers", t.int("num_hidden_layers", 12))
    w.sym("text_vocab_size", t.int("vocab_size", vocab))
    w.sym("text_max_position_embeddings", t.int("max_position_embeddings", positions))
    block = encoder_block(w, "text_layer", d, heads, ffn, t.act("hidden_act", act), causal, True)
    return [
        call("embedding", "token_embedding", "text_vocab_size", d),
        call("pos_embedding", "position_embedding", "text_max_position_embeddings", d),
        *w.stack([block], count=layers, name="layers", indent=""),
        call("layernorm", "final_layer_norm", d),
    ]


@register("clip")
def clip(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "clip", "CLIPModel")
    proj = w.sym("projection_dim", c.int("projection_dim", 512))
    w.note(
        "Two parts: the text tower (causal attention over seq_len tokens) and the vision tower "
        "(an image, patch tokens); each projection reads its pooled token only (written on the "
        "stream: exact parameters).  A dual encoder: no KV cache."
    )
    t = sub(c, "text_config")
    text = text_tower(
        w, t, causal=True, vocab=49408, positions=77, act="quick_gelu", sizes=(512, 8, 2048)
    )
    text.append(call("linear", "text_projection", "text_hidden_size", proj, bias=False))
    w.part("text", "[batch, seq_len]", text)
    v = sub(c, "vision_config")
    if not v.has("hidden_act"):
        v.data["hidden_act"] = "quick_gelu"  # CLIPVisionConfig's default
    vision, shape = vision_tower(w, v, "vision_", cls=True, conv_bias=False, pre_norm=True)
    vision.append(call("layernorm", "post_layernorm", "vision_hidden_size"))
    vision.append(call("linear", "visual_projection", "vision_hidden_size", proj, bias=False))
    w.part("vision", shape, vision)
    w.body.append("  " + call("param", "logit_scale", 1))
    return w


@register("siglip")
def siglip(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "siglip", "SiglipModel")
    w.note(
        "Two parts: the text tower (bidirectional attention over seq_len tokens) and the vision "
        "tower (an image, patch tokens, no class token) with its attention-pooling head "
        "(`probe`, nn.MultiheadAttention, LayerNorm, MLP; written on the stream: exact "
        "parameters).  A dual encoder: no KV cache."
    )
    t = sub(c, "text_config")
    text = text_tower(
        w,
        t,
        causal=False,
        vocab=32000,
        positions=64,
        act="gelu_pytorch_tanh",
        sizes=(768, 12, 3072),
    )
    w.sym("text_projection_size", t.int("projection_size", t.int("hidden_size", 768)))
    text.append(call("linear", "head", "text_hidden_size", "text_projection_size"))
    w.part("text", "[batch, seq_len]", text)
    v = sub(c, "vision_config")
    if not v.has("hidden_act"):
        v.data["hidden_act"] = "gelu_pytorch_tanh"  # SiglipVisionConfig's default
    vision, shape = vision_tower(w, v, "vision_", cls=False, conv_bias=True, pre_norm=False)
    d = "vision_hidden_size"
    vision.append(call("layernorm", "post_layernorm", d))
    if v.bool("vision_use_head", True):
        vision += [
            call("param", "probe", d),
            call(
                "attention", "head_attention", d, heads="vision_num_attention_heads", causal=False
            ),
            call("layernorm", "head_layernorm", d),
            call("mlp", "head_mlp", d, "vision_intermediate_size", act=v.act("hidden_act")),
        ]
    w.part("vision", shape, vision)
    w.body.append("  " + call("param", "logit_scale", 1))
    w.body.append("  " + call("param", "logit_bias", 1))
    return w
