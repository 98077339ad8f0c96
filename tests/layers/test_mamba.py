"""The Mamba mixer against transformers' own (``MambaMixer``, ``MambaForCausalLM``): the
oracle for the reference path the layer's formulas follow (tests/layers/test_examples.py
holds them equal to symmem's own PyTorch module).

* Saved-for-backward bytes of one mixer (training, the CPU reference path: sequential
  selective scan) equal the formula for 1 and several sequences, fp32 and bf16.
* The inference cache transformers returns (conv states [b, I, k] and recurrent states
  [b, I, N] per layer) equals ``kv_cache`` and does not grow with the context.
* Parameters: ``symmem.parse`` of a mamba block equals the mixer's ``numel``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sympy

import symmem
from symmem.activations import ActPolicy, entries_bytes, saved_tensors

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

D, INNER, STATE, CONV, RANK = 16, 32, 4, 4, 3


def _mixer(bias: bool, conv_bias: bool) -> Any:
    from transformers import MambaConfig
    from transformers.models.mamba.modeling_mamba import MambaMixer

    # MambaConfig takes intermediate_size through **kwargs (it derives it from expand)
    cfg = MambaConfig(
        hidden_size=D,
        expand=INNER // D,
        state_size=STATE,
        time_step_rank=RANK,
        conv_kernel=CONV,
        use_bias=bias,
        use_conv_bias=conv_bias,
    )
    return MambaMixer(cfg, 0)


def _dsl(b: int, s: int, bias: bool, conv_bias: bool) -> str:
    args = f"{D}, {INNER}, {STATE}, {CONV}, {RANK}, bias = {str(bias).lower()}"
    args += f", conv_bias = {str(conv_bias).lower()}"
    return f"model m(input = [{b}, {s}, {D}]) {{ mamba({args}) }}\n"


@pytest.mark.parametrize(("b", "s"), [(1, 7), (2, 5), (3, 2)])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("bias", [False, True])
def test_saved_bytes_equal_transformers_mamba_mixer(b: int, s: int, dtype: str, bias: bool) -> None:
    from symmem.check import measure_saved

    transformers.logging.set_verbosity_error()
    tdtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    torch.manual_seed(0)
    mixer = _mixer(bias, not bias).train().to(tdtype)
    x = torch.randn(b, s, D, dtype=tdtype, requires_grad=True)
    _, seen = measure_saved(lambda: mixer(x), list(mixer.parameters()))
    measured = sum(v[0] for v in seen.values())
    m = symmem.parse(_dsl(b, s, bias, not bias))
    policy = ActPolicy(device="cpu", dtype=dtype, loss="none")
    formula = entries_bytes(saved_tensors(m.graph, policy), policy)
    assert sympy.sympify(formula) == measured
    params = sum(p.numel() for p in mixer.parameters())
    assert m.params().total.evaluate() == params


def test_state_cache_equals_transformers_and_is_constant_in_context() -> None:
    from transformers import MambaConfig, MambaForCausalLM

    from symmem.hf.importer import config_text_to_mem

    transformers.logging.set_verbosity_error()
    cfg: dict[str, Any] = {
        "model_type": "mamba",
        "vocab_size": 64,
        "hidden_size": D,
        "num_hidden_layers": 3,
        "state_size": STATE,
        "time_step_rank": RANK,
        "conv_kernel": CONV,
    }
    model = MambaForCausalLM(MambaConfig(**cfg)).eval()
    text = config_text_to_mem(json.dumps(cfg), "config.json")
    for b, s in ((1, 3), (2, 9)):
        with torch.no_grad():
            out = model(torch.randint(0, 64, (b, s)), use_cache=True)
        measured = 0
        for layer in out.past_key_values.layers:
            for states in (layer.conv_states, layer.recurrent_states):
                measured += sum(t.numel() * t.element_size() for t in states.values())
        sym = symmem.parse(text, set_values={"batch": b, "seq_len": s})
        assert sym.memory("infer", precision="fp32").kv_cache.evaluate() == measured
        # hand derivation: 3 layers x b x I (32) x (k 4 + N 4) x 4 bytes
        assert measured == 3 * b * 32 * (4 + 4) * 4


def _normed_mixer(family: str) -> Any:
    """Falcon-Mamba's mixer (weightless RMSNorms of dt, B, C) or Jamba's (weighted)."""
    from transformers import FalconMambaConfig, JambaConfig
    from transformers.models.falcon_mamba.modeling_falcon_mamba import FalconMambaMixer
    from transformers.models.jamba.modeling_jamba import JambaMambaMixer

    if family == "jamba":
        cfg = JambaConfig(
            hidden_size=D,
            mamba_expand=INNER // D,
            mamba_d_state=STATE,
            mamba_dt_rank=RANK,
            mamba_d_conv=CONV,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
        return JambaMambaMixer(cfg, 0)
    # FalconMambaMixer's weight init reads its norms before it makes them (transformers
    # 5.x): build on the meta device, which skips it, then give the weights values
    falcon = FalconMambaConfig(
        hidden_size=D, expand=INNER // D, state_size=STATE, time_step_rank=RANK, conv_kernel=CONV
    )
    with torch.device("meta"):
        mixer = FalconMambaMixer(falcon, 0)
    mixer = mixer.to_empty(device="cpu")
    for p in mixer.parameters():
        torch.nn.init.normal_(p, std=0.1)
    for b in mixer.buffers():
        b.fill_(1.0)
    return mixer


@pytest.mark.parametrize(("b", "s"), [(1, 7), (2, 5), (3, 2)])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize(
    ("family", "norm"), [("falcon_mamba", "weightless"), ("jamba", "weighted")]
)
def test_saved_bytes_equal_transformers_normed_mixers(
    b: int, s: int, dtype: str, family: str, norm: str
) -> None:
    from symmem.check import measure_saved

    transformers.logging.set_verbosity_error()
    tdtype = torch.float32 if dtype == "fp32" else torch.bfloat16
    torch.manual_seed(0)
    mixer = _normed_mixer(family).train().to(tdtype)
    x = torch.randn(b, s, D, dtype=tdtype, requires_grad=True)
    _, seen = measure_saved(lambda: mixer(x), [*mixer.parameters(), *mixer.buffers()])
    measured = sum(v[0] for v in seen.values())
    text = _dsl(b, s, False, True).replace(") }", f", bc_norm = {norm}) }}")
    m = symmem.parse(text)
    policy = ActPolicy(device="cpu", dtype=dtype, loss="none")
    formula = entries_bytes(saved_tensors(m.graph, policy), policy)
    assert sympy.sympify(formula) == measured
    assert m.params().total.evaluate() == sum(p.numel() for p in mixer.parameters())


@pytest.mark.parametrize(("groups", "bias"), [(1, False), (2, True), (8, False)])
def test_mamba2_parameters_equal_transformers_mixer(groups: int, bias: bool) -> None:
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    cfg = Mamba2Config(
        hidden_size=D,
        expand=2,
        num_heads=8,
        head_dim=4,
        n_groups=groups,
        state_size=STATE,
        conv_kernel=CONV,
        use_bias=bias,
        use_conv_bias=not bias,
    )
    with torch.device("meta"):
        mixer = Mamba2Mixer(cfg, 0)
    args = f"{D}, 32, {STATE}, 8, n_groups = {groups}, d_conv = {CONV}"
    args += f", bias = {str(bias).lower()}, conv_bias = {str(not bias).lower()}"
    m = symmem.parse(f"model m(input = [1, 4, {D}]) {{ mamba2({args}) }}\n")
    assert m.params().total.evaluate() == sum(p.numel() for p in mixer.parameters())
