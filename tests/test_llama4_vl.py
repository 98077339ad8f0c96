"""Llama 4 multimodal (``Llama4ForConditionalGeneration``): the vision part (vision model and
projector) and the text part each exact against transformers' modules on the meta device, the
active parameters per token against the module tree, and the vision part's output (image
tokens per tile, text width) against a real forward of a shrunk vision model on CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import symmem
from symmem.hf.importer import config_text_to_mem

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

DATA = Path(__file__).parent / "data" / "hf"
STEMS = ["llama-4-scout-17b-16e-instruct", "llama-4-maverick-17b-128e-instruct"]


def _cfg(stem: str) -> dict[str, Any]:
    raw = json.loads((DATA / f"{stem}.json").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def _numel(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("stem", STEMS)
def test_each_part_equals_transformers_modules(stem: str) -> None:
    cfg = _cfg(stem)
    transformers.logging.set_verbosity_error()
    with torch.device("meta"):
        ref = transformers.Llama4ForConditionalGeneration(transformers.AutoConfig.for_model(**cfg))
    m = symmem.parse(config_text_to_mem(json.dumps(cfg), "config.json"))
    params = m.params(active_embeddings="count")
    parts = {name: q.evaluate() for name, q in params.parts}
    assert parts["vision"] == _numel(ref.vision_model) + _numel(ref.multi_modal_projector)
    assert parts["text"] == _numel(ref.language_model)
    assert params.total.evaluate() == _numel(ref)
    # active per token: each routed-expert tensor ([E, ...] in a *Experts module) at top_k / E
    k = cfg["text_config"]["num_experts_per_tok"]
    inactive = 0
    for name, module in ref.named_modules():
        if name.endswith(".experts") and type(module).__name__.endswith("Experts"):
            for p in module.parameters(recurse=False):
                inactive += p.numel() // p.shape[0] * (p.shape[0] - k)
    assert params.active.evaluate() == _numel(ref) - inactive


def test_the_vision_part_gives_the_image_tokens_transformers_gives() -> None:
    """A shrunk vision tower (64 px, patch 8: 64 patches, folded 2 x 2 into 16 tokens) run on
    CPU: the projected image features have the vision part's output shape."""
    cfg = _cfg("llama-4-scout-17b-16e-instruct")
    cfg["vision_config"].update(
        hidden_size=32,
        intermediate_size=128,
        num_attention_heads=4,
        num_hidden_layers=2,
        image_size=64,
        patch_size=8,
        projector_input_dim=48,
        projector_output_dim=48,
        vision_output_dim=48,
    )
    cfg["text_config"].update(
        hidden_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=10,
        intermediate_size=24,
        intermediate_size_mlp=24,
        num_local_experts=2,
        vocab_size=64,
    )
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    ref = transformers.Llama4ForConditionalGeneration(transformers.AutoConfig.for_model(**cfg))
    pixels = torch.randn(3, 3, 64, 64)  # three tiles
    with torch.no_grad():
        feats = ref.multi_modal_projector(ref.vision_model(pixels).last_hidden_state)
    m = symmem.parse(config_text_to_mem(json.dumps(cfg), "config.json"), set_values={"batch": 3})
    vision = m.graph.only("vision")
    out = tuple(int(symmem.values.substitute(s, m.values)) for s in vision.root.out_shape)
    assert out == tuple(feats.shape) == (3, 16, 40)
    assert m.params().total.evaluate() == _numel(ref)


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("layers", [1, 2])
def test_the_vision_parts_saved_tensors_equal_transformers(attention: str, layers: int) -> None:
    """The vision part's saved bytes against ``Llama4VisionModel`` + the projector, trained on
    CPU in fp32 (saved_tensors_hooks, storages deduplicated, parameters and buffers left out:
    the rotary table ``freqs_ci`` is a buffer of the model).  Shrunk tower: 64 px, patch 8, so
    64 patches + the class token = 65 tokens in every layer (``torch.cat([patches,
    class_embedding])``, dropped by ``[:, :-1, :]`` before the pixel shuffle); one prompt of
    three tiles (``images = 3``).  Hand check at eager, 1 layer: unfold's output 3 x 64 x 192
    x 4 = 147,456 B; layernorm_pre input 3 x 65 x 32 x 4 = 24,960 B + mean, rstd 2 x 780 B;
    per layer 8 tensors of 24,960 B (ln1 in, q/k/v in, q, k, v, o_proj in, ln2 in, fc1 in) + 4
    x 780 B + probs 3 x 4 x 65^2 x 4 = 202,800 B + GELU in and fc2 in 2 x 99,840 B = 605,280
    B; layernorm_post as layernorm_pre, 26,520 B; adapter fc1 in 3 x 16 x 128 x 4 = 24,576 B,
    then 4 x 9,216 B: 867,216 B.  Without the class token on the stream the formula gave
    12,688 B less (one token per tile in every layer)."""
    from symmem.activations import ActPolicy, entries_bytes, saved_tensors
    from symmem.check import measure_saved

    cfg = _cfg("llama-4-scout-17b-16e-instruct")
    cfg["vision_config"].update(
        hidden_size=32,
        intermediate_size=128,
        num_attention_heads=4,
        num_hidden_layers=layers,
        image_size=64,
        patch_size=8,
        projector_input_dim=48,
        projector_output_dim=48,
        vision_output_dim=48,
    )
    cfg["text_config"].update(
        hidden_size=40,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=10,
        intermediate_size=24,
        intermediate_size_mlp=24,
        num_local_experts=2,
        vocab_size=64,
    )
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.AutoConfig.for_model(**cfg, attn_implementation=attention)
    ref = transformers.Llama4ForConditionalGeneration(config).train()
    pixels = torch.randn(3, 3, 64, 64)
    _, seen = measure_saved(
        lambda: ref.multi_modal_projector(ref.vision_model(pixels).last_hidden_state).sum(),
        [*ref.parameters(), *ref.buffers()],
    )
    measured = sum(n for n, _ in seen.values())
    sets = {"batch": 1, "images": 3}
    m = symmem.parse(config_text_to_mem(json.dumps(cfg), "config.json"), set_values=sets)
    policy = ActPolicy.huggingface(device="cpu", attention=attention, dtype="fp32")
    entries = [e for e in saved_tensors(m.graph, policy, m.values) if e.path.startswith("vision.")]
    assert int(m.quantity(entries_bytes(entries, policy)).evaluate()) == measured
    if attention == "eager" and layers == 1:
        assert measured == 867_216
