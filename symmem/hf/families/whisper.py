"""Whisper (``WhisperForConditionalGeneration``; Radford et al. 2022, "Robust Speech
Recognition via Large-Scale Weak Supervision", sec. 2.2): an audio encoder and a text decoder,
two parts of one model.

The encoder reads log-mel frames ``[batch, num_mel_bins, 2 * max_source_positions]`` (3000
frames, 30 s): two ``conv1d`` (kernel 3; the second with stride 2) with GELU, then the frames
become tokens (``transpose(1, 2)``) and get sinusoidal positions (an ``nn.Embedding`` of
``max_source_positions`` rows, frozen but a parameter).  Pre-LayerNorm layers with a final
``layer_norm``; every ``k_proj`` has no bias.  The decoder adds learned positions
(``max_target_positions``); ``proj_out`` is tied to its token table."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


@register("whisper")
def whisper(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "whisper", "WhisperForConditionalGeneration")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("d_model", c.int("d_model"))
    w.sym("num_mel_bins", c.int("num_mel_bins", 80))
    w.sym("encoder_layers", c.int("encoder_layers"))
    w.sym("decoder_layers", c.int("decoder_layers"))
    w.sym("encoder_attention_heads", c.int("encoder_attention_heads"))
    w.sym("decoder_attention_heads", c.int("decoder_attention_heads"))
    w.sym("encoder_ffn_dim", c.int("encoder_ffn_dim"))
    w.sym("decoder_ffn_dim", c.int("decoder_ffn_dim"))
    w.sym("max_source_positions", c.int("max_source_positions", 1500), "audio tokens (30 s)")
    w.sym("max_target_positions", c.int("max_target_positions", 448))
    act = c.act("activation_function", "gelu")
    drop = dropout(w, c, "dropout", 0.0)
    tied = c.bool("tie_word_embeddings", True)
    w.note(
        "Encoder-decoder: two parts.  The encoder runs once on 2 * max_source_positions log-mel "
        "frames and keeps no KV cache; the decoder's self-attention caches its generated "
        "tokens (seq_len), its cross-attention the audio's keys and values once "
        "(max_source_positions).  attention_dropout and activation_dropout are not modelled."
    )

    def block(side: str, cross: bool) -> str:
        heads = f"{side}_attention_heads"
        attn = call(
            "attention", "self_attn", d, heads=heads, causal=side == "decoder", k_bias=False
        )
        lines = [residual(call("layernorm", "self_attn_layer_norm", d), attn, drop)]
        if cross:
            enc = call(
                "cross_attention", "encoder_attn", d, memory="encoder", heads=heads, k_bias=False
            )
            lines.append(residual(call("layernorm", "encoder_attn_layer_norm", d), enc, drop))
        ffn = call("mlp", "fc", d, f"{side}_ffn_dim", act=act)
        lines.append(residual(call("layernorm", "final_layer_norm", d), ffn, drop))
        return w.block(f"{side}_layer", lines)

    block("encoder", False)
    block("decoder", True)
    enc = [
        call("conv1d", "conv1", "num_mel_bins", d, 3, padding=1),
        "gelu",
        call("conv1d", "conv2", d, d, 3, stride=2, padding=1),
        "gelu",
        "transpose(1, 2)  # frames to tokens",
        call("pos_embedding", "embed_positions", "max_source_positions", d) + "  # sinusoidal",
    ]
    if drop:
        enc.append(drop)
    enc += w.stack(["encoder_layer"], count="encoder_layers", name="layers", indent="")
    enc.append(call("layernorm", "layer_norm", d))
    w.part("encoder", "[batch, num_mel_bins, 2 * max_source_positions]", enc)
    dec = [
        call("embedding", "embed_tokens", "vocab_size", d),
        call("pos_embedding", "embed_positions", "max_target_positions", d),
    ]
    if drop:
        dec.append(drop)
    dec += w.stack(["decoder_layer"], count="decoder_layers", name="layers", indent="")
    dec.append(call("layernorm", "layer_norm", d))
    dec.append(
        call(
            "linear", "proj_out", d, "vocab_size", bias=False, tie="embed_tokens" if tied else None
        )
    )
    w.part("decoder", "[batch, seq_len]", dec)
    return w
