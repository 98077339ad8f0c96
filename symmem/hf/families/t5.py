"""T5 (``T5ForConditionalGeneration``): an encoder-decoder, two parts of one model: the
decoder's cross-attention reads the encoder's output (docs/import.md)."""

from __future__ import annotations

from typing import Any

from symmem.hf.config import ACTIVATIONS, HFConfig
from symmem.hf.fields import dropout, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


@register("t5")
def t5(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "t5", "T5ForConditionalGeneration")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("d_model", c.int("d_model"), "hidden size")
    w.sym("d_kv", c.int("d_kv", 64), "size of each attention head")
    w.sym("d_ff", c.int("d_ff"))
    w.sym("num_layers", c.int("num_layers"), "encoder layers")
    w.sym("num_decoder_layers", c.int("num_decoder_layers", c.int("num_layers")), "decoder layers")
    w.sym("num_heads", c.int("num_heads"))
    w.sym("relative_attention_num_buckets", c.int("relative_attention_num_buckets", 32))
    proj = c.str("feed_forward_proj", "relu")
    parts = proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise c.unsupported("feed_forward_proj", "expected 'ACT' or 'gated-ACT'")
    gated = parts[0] == "gated"
    act_name = "gelu_new" if proj == "gated-gelu" else parts[-1]
    if act_name not in (
        "gelu",
        "gelu_new",
        "relu",
        "silu",
        "gelu_pytorch_tanh",
        "gelu_fast",
        "quick_gelu",
        "tanh",
        "sigmoid",
        "swish",
        "gelu_python",
        "gelu_accurate",
    ):
        raise c.unsupported("feed_forward_proj", f"activation '{act_name}' is not one symmem knows")
    act = ACTIVATIONS[act_name]
    tied = tie_word_embeddings(c, True)
    drop = dropout(w, c, "dropout_rate", 0.1)
    w.sym("src_len", "seq_len", "encoder input length (workload; default: seq_len)")
    w.note(
        "Encoder-decoder: two parts.  The encoder runs once on src_len tokens and keeps no KV "
        "cache; the decoder's self-attention caches its generated tokens (seq_len), its "
        "cross-attention the encoder output's keys and values once (src_len)."
    )
    w.note(
        "T5's LayerNorm has a scale and no shift or mean (RMSNorm); the relative-position bias "
        "table belongs to the first layer of each stack and is shared by the others."
    )
    ffn = (
        call("gated_mlp", "DenseReluDense", d, "d_ff", act=act)
        if gated
        else call("mlp", "DenseReluDense", d, "d_ff", act=act, bias=False)
    )
    attn_kw: dict[str, Any] = {
        "heads": "num_heads",
        "head_dim": "d_kv",
        "qkv_bias": False,
        "out_bias": False,
        "softmax_fp32": False,  # T5's eager_attention_forward: softmax in the activation dtype
    }
    w.block(
        "encoder_layer",
        [
            residual(
                call("rmsnorm", "layer_norm", d),
                call("attention", "SelfAttention", d, causal=False, **attn_kw),
                drop,
            ),
            residual(call("rmsnorm", "ff_layer_norm", d), ffn, drop),
        ],
    )
    w.block(
        "decoder_layer",
        [
            residual(
                call("rmsnorm", "layer_norm", d),
                call("attention", "SelfAttention", d, **attn_kw),
                drop,
            ),
            residual(
                call("rmsnorm", "cross_layer_norm", d),
                call("cross_attention", "EncDecAttention", d, memory="encoder", **attn_kw),
                drop,
            ),
            residual(call("rmsnorm", "ff_layer_norm", d), ffn, drop),
        ],
    )
    enc = [call("embedding", "shared", "vocab_size", d) + "  # shared by encoder and decoder"]
    enc.append(
        call(
            "param",
            "encoder_relative_attention_bias",
            "relative_attention_num_buckets",
            "num_heads",
        )
    )
    enc += w.stack(["encoder_layer"], count="num_layers", name="layers", indent="")
    enc.append(call("rmsnorm", "final_layer_norm", d))
    w.part("encoder", "[batch, src_len]", enc)
    dec = [call("embedding", "embed_tokens", "vocab_size", d, tie="shared")]
    dec.append(
        call(
            "param",
            "decoder_relative_attention_bias",
            "relative_attention_num_buckets",
            "num_heads",
        )
    )
    dec += w.stack(["decoder_layer"], count="num_decoder_layers", name="layers", indent="")
    dec.append(call("rmsnorm", "final_layer_norm", d))
    if not tied:
        w.note("tie_word_embeddings = false (T5 v1.1, Flan-T5): the LM head has its own weight.")
    dec.append(
        call("linear", "lm_head", d, "vocab_size", bias=False, tie="shared" if tied else None)
    )
    w.part("decoder", "[batch, seq_len]", dec)
    return w
