"""Mamba (``MambaForCausalLM``) and Falcon-Mamba (``FalconMambaForCausalLM``): a stack of
pre-RMSNorm residual blocks around the selective state-space mixer, no attention.
Falcon-Mamba's mixer adds weightless RMSNorms of dt, B and C (``FalconMambaMixer``'s
``dt_layernorm``, ``b_layernorm``, ``c_layernorm``: non-persistent buffers, no parameters)."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.fields import tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


def mamba_mixer(c: HFConfig, w: MemWriter, prefix: str = "", bc_norm: str = "none") -> str:
    """The mixer statement, declaring its symbols; ``prefix`` names Jamba's ``mamba_*``
    fields (``mamba_d_state``, ``mamba_d_conv``, ``mamba_expand``, ``mamba_dt_rank``)."""
    hidden = c.int("hidden_size")
    d = w.sym("hidden_size", hidden)
    keys = (
        {"expand": "expand", "state": "state_size", "conv": "conv_kernel", "rank": "time_step_rank"}
        if not prefix
        else {"expand": "mamba_expand", "state": "mamba_d_state", "conv": "mamba_d_conv"}
        | {"rank": "mamba_dt_rank"}
    )
    expand = c.int(keys["expand"], 2)
    width, why = expand * hidden, f"{keys['expand']} ({expand}) x hidden_size"
    # MambaMixer / FalconMambaMixer read config.intermediate_size, which the config class sets
    # to expand x hidden_size unless the file gives one (transformers 5.x keeps the file's);
    # Jamba's mixer always takes mamba_expand x hidden_size
    if not prefix and c.has("intermediate_size") and c.int("intermediate_size") != width:
        width = c.int("intermediate_size")
        why = f"from the file (the config class keeps it over {why})"
    inner = w.sym("mamba_intermediate_size" if prefix else "intermediate_size", width, why)
    n = w.sym(keys["state"], c.int(keys["state"], 16))
    k = w.sym(keys["conv"], c.int(keys["conv"], 4))
    rank = c.raw(keys["rank"], "auto")
    r_value = -(-hidden // 16) if rank == "auto" else c.int(keys["rank"])
    r = w.sym(keys["rank"], r_value, "ceil(hidden_size / 16)" if rank == "auto" else "")
    bias = c.bool("mamba_proj_bias" if prefix else "use_bias", False)
    conv_bias = c.bool("mamba_conv_bias" if prefix else "use_conv_bias", True)
    if not prefix:
        act = c.str("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise c.unsupported("hidden_act", "the Mamba mixer is modelled with SiLU")
    return call(
        "mamba",
        "mamba" if prefix else "mixer",
        d,
        inner,
        n,
        k,
        r,
        bias=bias or None,
        conv_bias=conv_bias,
        bc_norm=None if bc_norm == "none" else bc_norm,
    )


def _mamba_lm(c: HFConfig, model: str, hf_class: str, bc_norm: str, tied: bool) -> MemWriter:
    w = MemWriter(c, model, hf_class)
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    mixer = mamba_mixer(c, w, bc_norm=bc_norm)
    w.note(
        "Mamba: no attention; each layer's inference cache is its recurrent state "
        "(conv_kernel + state_size) x intermediate_size per sequence, whatever the context."
    )
    if bc_norm != "none":
        w.note("Falcon-Mamba: RMSNorms of dt, B and C without weights (no parameters).")
    if c.bool("residual_in_fp32", True):
        w.note(
            "residual_in_fp32: the residual stream is added in fp32 (no parameters; its "
            "casts are not in the saved-tensor count)."
        )
    w.block("mamba_block", [residual(call("rmsnorm", "norm", d), mixer)])
    tie = tie_word_embeddings(c, tied)
    w.body += ["  " + call("embedding", "embeddings", "vocab_size", d)]
    w.body += w.stack(["mamba_block"])
    w.body += [
        "  " + call("rmsnorm", "norm_f", d),
        "  "
        + call("linear", "lm_head", d, "vocab_size", bias=False, tie="embeddings" if tie else None),
    ]
    return w


@register("mamba")
def mamba(c: HFConfig) -> MemWriter:
    return _mamba_lm(c, "mamba", "MambaForCausalLM", "none", True)


@register("falcon_mamba")
def falcon_mamba(c: HFConfig) -> MemWriter:
    return _mamba_lm(c, "falcon_mamba", "FalconMambaForCausalLM", "weightless", True)


@register("mamba2")
def mamba2(c: HFConfig) -> MemWriter:
    """Mamba-2 (``Mamba2ForCausalLM``): the same stack around the Mamba-2 mixer."""
    w = MemWriter(c, "mamba2", "Mamba2ForCausalLM")
    w.sym("vocab_size", c.int("vocab_size", 32768))
    hidden = c.int("hidden_size", 4096)
    d = w.sym("hidden_size", hidden)
    w.sym("num_hidden_layers", c.int("num_hidden_layers", 64))
    expand = c.int("expand", 2)
    heads, head_dim = c.int("num_heads", 128), c.int("head_dim", 64)
    if expand * hidden != heads * head_dim:
        raise c.unsupported(
            "num_heads",
            f"expand x hidden_size = {expand * hidden} must equal num_heads x head_dim = "
            f"{heads * head_dim} (Mamba2Config refuses it too)",
        )
    inner = w.sym("intermediate_size", expand * hidden, f"expand ({expand}) x hidden_size")
    n = w.sym("state_size", c.int("state_size", 128))
    h = w.sym("num_heads", heads, f"of head_dim {head_dim}")
    g = w.sym("n_groups", c.int("n_groups", 8), "B and C shared by num_heads / n_groups heads")
    k = w.sym("conv_kernel", c.int("conv_kernel", 4))
    if c.str("hidden_act", "silu") not in ("silu", "swish"):
        raise c.unsupported("hidden_act", "the Mamba-2 mixer is modelled with SiLU")
    mixer = call(
        "mamba2",
        "mixer",
        d,
        inner,
        n,
        h,
        n_groups=g,
        d_conv=k,
        bias=c.bool("use_bias", False) or None,
        conv_bias=c.bool("use_conv_bias", True),
    )
    w.note(
        "Mamba-2: no attention; each layer's inference cache is its recurrent state per "
        "sequence: conv state (intermediate_size + 2 n_groups state_size) x conv_kernel and "
        "SSM state num_heads x head_dim x state_size, whatever the context."
    )
    w.block("mamba_block", [residual(call("rmsnorm", "norm", d), mixer)])
    tie = tie_word_embeddings(c, False)
    w.body += ["  " + call("embedding", "embeddings", "vocab_size", d)]
    w.body += w.stack(["mamba_block"])
    w.body += [
        "  " + call("rmsnorm", "norm_f", d),
        "  "
        + call("linear", "lm_head", d, "vocab_size", bias=False, tie="embeddings" if tie else None),
    ]
    return w
