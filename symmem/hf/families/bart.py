"""BART and mBART (``BartForConditionalGeneration`` / ``MBartForConditionalGeneration``): an
encoder and a decoder, two parts of one model, the decoder's cross-attention reading the
encoder's output (docs/import.md).

Both stacks read the shared token table (``model.shared``, tied to each stack's
``embed_tokens`` and to ``lm_head``), add learned positions (``BartLearnedPositionalEmbedding``:
``max_position_embeddings + 2`` rows, fairseq's padding offset) and normalise the embedding
(``layernorm_embedding``).  BART's layers are post-LayerNorm; mBART's pre-LayerNorm, with a
final ``layer_norm`` after each stack.  ``final_logits_bias`` is a buffer, not a parameter."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


def _bart_like(c: HFConfig, hf_class: str, pre_norm: bool) -> MemWriter:
    w = MemWriter(c, c.model_type, hf_class)
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("d_model", c.int("d_model"))
    w.sym("encoder_layers", c.int("encoder_layers"))
    w.sym("decoder_layers", c.int("decoder_layers"))
    w.sym("encoder_attention_heads", c.int("encoder_attention_heads"))
    w.sym("decoder_attention_heads", c.int("decoder_attention_heads"))
    w.sym("encoder_ffn_dim", c.int("encoder_ffn_dim"))
    w.sym("decoder_ffn_dim", c.int("decoder_ffn_dim"))
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 1024))
    w.sym("src_len", "seq_len", "encoder input length (workload; default: seq_len)")
    act = c.act("activation_function", "gelu")
    drop = dropout(w, c, "dropout", 0.1)
    w.note(
        "Encoder-decoder: two parts.  The encoder runs once on src_len tokens and keeps no KV "
        "cache; the decoder's self-attention caches its generated tokens (seq_len), its "
        "cross-attention the encoder output's keys and values once (src_len).  "
        "attention_dropout and activation_dropout are not modelled (saved tensors only)."
    )

    def sub(name: str, layer: str) -> list[str]:
        norm = call("layernorm", f"{name}_layer_norm", d)
        if pre_norm:
            return [residual(norm, layer, drop)]
        return [residual(layer, drop), norm]

    def block(side: str, cross: bool) -> str:
        heads = f"{side}_attention_heads"
        self_attn = call("attention", "self_attn", d, heads=heads, causal=side == "decoder")
        lines = sub("self_attn", self_attn)
        if cross:
            enc = call("cross_attention", "encoder_attn", d, memory="encoder", heads=heads)
            lines += sub("encoder_attn", enc)
        ffn = call("mlp", "fc", d, f"{side}_ffn_dim", act=act)
        lines += sub("final", ffn)
        return w.block(f"{side}_layer", lines)

    block("encoder", False)
    block("decoder", True)
    positions = "max_position_embeddings + 2"
    for side in ("encoder", "decoder"):
        lines = [
            call("embedding", "shared", "vocab_size", d)
            if side == "encoder"
            else call("embedding", "embed_tokens", "vocab_size", d, tie="shared"),
            call("pos_embedding", "embed_positions", positions, d),
            call("layernorm", "layernorm_embedding", d),
        ]
        if drop:
            lines.append(drop)
        lines += w.stack([f"{side}_layer"], count=f"{side}_layers", name="layers", indent="")
        if pre_norm:
            lines.append(call("layernorm", "layer_norm", d))
        if side == "decoder":
            lines.append(call("linear", "lm_head", d, "vocab_size", bias=False, tie="shared"))
        w.part(side, "[batch, src_len]" if side == "encoder" else "[batch, seq_len]", lines)
    return w


@register("bart")
def bart(c: HFConfig) -> MemWriter:
    if c.bool("add_final_layer_norm", False) or c.bool("normalize_before", False):
        raise c.unsupported("normalize_before", "pre-LayerNorm BART is mBART's layout")
    return _bart_like(c, "BartForConditionalGeneration", pre_norm=False)


@register("mbart")
def mbart(c: HFConfig) -> MemWriter:
    return _bart_like(c, "MBartForConditionalGeneration", pre_norm=True)
