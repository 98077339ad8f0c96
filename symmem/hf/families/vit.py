"""ViT (``ViTModel``; Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"), and the
vision and text towers that CLIP, SigLIP and the vision-language families share.

A vision tower: ``patchify`` (the patch convolution, then tokens), a class token
(``cls_token``; not SigLIP's), learned positions over the patches (+ 1), pre-LayerNorm encoder
layers (q/k/v/o with biases, a two-matrix MLP), a final LayerNorm and the tower's pooler or
head.  Every count is exact against transformers; the pooler and projection heads read the
first token (or a pooled one) only, written on the stream (exact parameters, over-counted
activations)."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


def encoder_block(
    w: MemWriter, name: str, d: str, heads: str, ffn: str, act: str, causal: bool, qkv_bias: bool
) -> str:
    """A pre-LayerNorm encoder layer (ViTLayer, CLIPEncoderLayer, SiglipEncoderLayer)."""
    attn = call("attention", "self_attn", d, heads=heads, causal=causal, qkv_bias=qkv_bias)
    return w.block(
        name,
        [
            residual(call("layernorm", "layer_norm1", d), attn),
            residual(call("layernorm", "layer_norm2", d), call("mlp", "mlp", d, ffn, act=act)),
        ],
    )


def vision_tower(
    w: MemWriter,
    c: HFConfig,
    p: str,
    *,
    cls: bool,
    conv_bias: bool,
    pre_norm: bool,
    batch: str = "batch",
) -> tuple[list[str], str]:
    """The lines of a vision tower over ``c`` (a vision config) with symbols prefixed ``p``,
    and its input shape.  ``cls``: a class token; ``conv_bias``: the patch convolution's bias;
    ``pre_norm``: CLIP's ``pre_layrnorm`` before the layers; ``batch``: the images the tower
    reads (``batch * images`` in a vision-language model)."""
    d = w.sym(f"{p}hidden_size", c.int("hidden_size", 768))
    heads = w.sym(f"{p}num_attention_heads", c.int("num_attention_heads", 12))
    ffn = w.sym(f"{p}intermediate_size", c.int("intermediate_size", 3072))
    layers = w.sym(f"{p}num_hidden_layers", c.int("num_hidden_layers", 12))
    chans = w.sym(f"{p}num_channels", c.int("num_channels", 3))
    image = w.sym(f"{p}image_size", c.int("image_size", 224))
    patch = w.sym(f"{p}patch_size", c.int("patch_size", 16))
    act = c.act("hidden_act", "gelu")
    block = encoder_block(w, f"{p}layer", d, heads, ffn, act, False, c.bool("qkv_bias", True))
    n = f"({image} // {patch})^2" + (" + 1" if cls else "")
    lines = [call("patchify", "patch_embedding", chans, d, patch, bias=conv_bias)]
    if cls:
        lines.append(call("cls_token", "class_embedding", d))
    lines.append(call("pos_embedding", "position_embedding", n, d))
    if pre_norm:
        lines.append(call("layernorm", "pre_layrnorm", d))
    lines += w.stack([block], count=layers, name="layers", indent="")
    return lines, f"[{batch}, {chans}, {image}, {image}]"


@register("vit")
def vit(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "vit", "ViTModel")
    w.note(
        "The base model with its pooler (no classifier); an image input "
        "[batch, num_channels, image_size, image_size] made patch tokens by `patchify`."
    )
    lines, shape = vision_tower(w, c, "", cls=True, conv_bias=True, pre_norm=False)
    w.input_shape = shape
    lines.append(call("layernorm", "layernorm", "hidden_size"))
    lines.append(call("linear", "pooler", "hidden_size", "hidden_size") + "  # first token, tanh")
    w.body += [f"  {ln}" for ln in lines]
    return w
