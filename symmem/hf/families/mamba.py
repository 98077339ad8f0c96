"""Mamba (``MambaForCausalLM``): a stack of pre-RMSNorm residual blocks around the selective
state-space mixer, no attention, a tied head."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.fields import tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


@register("mamba")
def mamba(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "mamba", "MambaForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    hidden = c.int("hidden_size")
    d = w.sym("hidden_size", hidden)
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    expand = c.int("expand", 2)
    # MambaConfig sets intermediate_size = int(expand * hidden_size) whatever the file says
    inner = w.sym("intermediate_size", expand * hidden, f"expand ({expand}) x hidden_size")
    n = w.sym("state_size", c.int("state_size", 16))
    k = w.sym("conv_kernel", c.int("conv_kernel", 4))
    rank = c.raw("time_step_rank", "auto")
    r_value = -(-hidden // 16) if rank == "auto" else c.int("time_step_rank")
    r = w.sym("time_step_rank", r_value, "ceil(hidden_size / 16)" if rank == "auto" else "")
    bias = c.bool("use_bias", False)
    conv_bias = c.bool("use_conv_bias", True)
    act = c.str("hidden_act", "silu")
    if act not in ("silu", "swish"):
        raise c.unsupported("hidden_act", "the Mamba mixer is modelled with SiLU")
    w.note(
        "Mamba: no attention; each layer's inference cache is its recurrent state "
        "(conv_kernel + state_size) x intermediate_size per sequence, whatever the context."
    )
    if c.bool("residual_in_fp32", True):
        w.note(
            "residual_in_fp32: the residual stream is added in fp32 (no parameters; its "
            "casts are not in the saved-tensor count)."
        )
    mixer = call("mamba", "mixer", d, inner, n, k, r, bias=bias or None, conv_bias=conv_bias)
    w.block("mamba_block", [residual(call("rmsnorm", "norm", d), mixer)])
    tied = tie_word_embeddings(c, True)
    w.body += ["  " + call("embedding", "embeddings", "vocab_size", d)]
    w.body += w.stack(["mamba_block"])
    w.body += [
        "  " + call("rmsnorm", "norm_f", d),
        "  "
        + call(
            "linear", "lm_head", d, "vocab_size", bias=False, tie="embeddings" if tied else None
        ),
    ]
    return w
