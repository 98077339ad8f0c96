"""LoRA's saved-for-backward bytes, measured, against `symmem memory --lora-rank ... --json`.

The oracle is tests/test_saved_grid.py's: ``torch.autograd.graph.saved_tensors_hooks`` around
one training forward (each storage once, parameters and buffers excluded), on tiny
transformers models (Llama with multi-head and grouped-query attention, GPT-2) whose base is
frozen (``requires_grad_(False)``) and whose targeted matrices carry an adapter whose forward
is PEFT's ``lora.Linear.forward``: ``base(x) + lora_B(lora_A(dropout(x))) * scaling`` with
``lora_dropout = 0`` (``nn.Identity``), the input cast to the adapter's dtype first
(``_cast_input_dtype``).  GPT-2's q, k and v are one fused ``Conv1D`` (``c_attn``): the adapted
ones each get an A and a B whose outputs are put in their slice (loralib's ``MergedLinear``,
the LoRA paper's own GPT-2 code).  PEFT itself, where installed, checks the Llama adapters.

A fixed subset of the combinations (each run well under a second): targets q_proj,v_proj and
all-linear; fp32 and bf16; eager and sdpa; with and without the loss.  Every one is exact (to
the byte); before the frozen base was modelled symmem counted the base as in full training
(docs/validation.md has both errors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from test_saved_grid import _hf_model  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from symmem.check import measure_saved  # noqa: E402
from symmem.cli import app  # noqa: E402

V = 96
R = 4
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
runner = CliRunner()
pytestmark = [
    pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN"),
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated"),
]

#: torch comes from importorskip (a module mypy cannot see into): its Module as a plain base
Module: Any = torch.nn.Module


class LoraLinear(Module):
    """PEFT's ``lora.Linear`` forward over a frozen ``base`` (peft/tuners/lora/layer.py)."""

    def __init__(self, base: Any, in_f: int, out_f: int, dtype: Any) -> None:
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Linear(in_f, R, bias=False).to(dtype)
        self.lora_B = torch.nn.Linear(R, out_f, bias=False).to(dtype)
        torch.nn.init.normal_(self.lora_B.weight)  # PEFT zeros it; values do not matter here
        self.scaling = 2.0

    def forward(self, x: Any) -> Any:
        result = self.base(x)
        out_dtype = result.dtype
        x = x.to(self.lora_A.weight.dtype)  # _cast_input_dtype: a no-op when they agree
        result = result + self.lora_B(self.lora_A(x)) * self.scaling
        return result.to(out_dtype)


class FusedQkvLora(Module):
    """GPT-2's ``c_attn`` (d -> 3d) with adapters on the chosen slices of q, k, v."""

    def __init__(self, base: Any, d: int, which: list[int], dtype: Any) -> None:
        super().__init__()
        self.base, self.d, self.which = base, d, which
        self.A = torch.nn.ModuleList([torch.nn.Linear(d, R, bias=False).to(dtype) for _ in which])
        self.B = torch.nn.ModuleList([torch.nn.Linear(R, d, bias=False).to(dtype) for _ in which])

    def forward(self, x: Any) -> Any:
        result = self.base(x)
        xa = x.to(self.A[0].weight.dtype)
        parts, k = [], 0
        for j in range(3):
            if j in self.which:
                parts.append(self.B[k](self.A[k](xa)) * 2.0)
                k += 1
            else:
                parts.append(torch.zeros(*x.shape[:-1], self.d, dtype=xa.dtype))
        return (result + torch.cat(parts, -1)).to(result.dtype)


def _config(family: str, attn: str) -> Any:
    """The tiny transformers config of tests/test_saved_grid.py (hidden 32, 2 layers, 4 heads),
    dropout off."""
    return _hf_model(family, 0.0, attn)[0]


def _lora_model(family: str, attn: str, dtype: Any, targets: str, lora_dtype: Any) -> Any:
    torch.manual_seed(0)
    cfg = _config(family, attn)
    if family == "gpt2":
        model = transformers.GPT2LMHeadModel(cfg).to(dtype).train()
    else:
        model = transformers.LlamaForCausalLM(cfg).to(dtype).train()
    for p in model.parameters():
        p.requires_grad_(False)
    every = targets == "all-linear"
    if family == "gpt2":
        names = ("q_proj", "k_proj", "v_proj")
        for blk in model.transformer.h:
            which = [j for j, n in enumerate(names) if every or n in targets.split(",")]
            blk.attn.c_attn = FusedQkvLora(blk.attn.c_attn, 32, which, lora_dtype)
            if every:  # Conv1D weights are [in, out]
                for mod, name in ((blk.attn, "c_proj"), (blk.mlp, "c_fc"), (blk.mlp, "c_proj")):
                    base = getattr(mod, name)
                    i, o = base.weight.shape
                    setattr(mod, name, LoraLinear(base, i, o, lora_dtype))
        return model
    for blk in model.model.layers:
        for mod in (blk.self_attn, blk.mlp):
            for name, child in list(mod.named_children()):
                if isinstance(child, torch.nn.Linear) and (every or name in targets.split(",")):
                    lora = LoraLinear(child, child.in_features, child.out_features, lora_dtype)
                    setattr(mod, name, lora)
    return model


def _measure(model: Any, b: int, s: int, loss: bool, autocast: bool = False) -> int:
    ids = torch.randint(0, V, (b, s), generator=torch.Generator().manual_seed(1))

    def forward() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            if loss:
                return model(input_ids=ids, labels=ids, use_cache=False).loss
            return model(input_ids=ids, use_cache=False).logits

    _, seen = measure_saved(forward, [*model.parameters(), *model.buffers()])
    return sum(v[0] for v in seen.values())


def _formula(mem: Path, attn: str, dtype: str, targets: str, b: int, s: int, loss: bool,
             lora_dtype: str, *extra: str) -> int:  # fmt: skip
    args = ["memory", str(mem), "--impl", "transformers", "--device", "cpu"]
    args += ["--attention", attn, "--act-dtype", dtype, "--json", "--no-dropout"]
    args += ["--loss", "cross_entropy" if loss else "none", "--lora-rank", str(R)]
    args += ["--lora-targets", targets, "--lora-dtype", lora_dtype, *extra]
    args += ["--set", f"batch={b}", "--set", f"seq_len={s}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return int(json.loads(res.output)["bytes"]["activations"])


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The `.mem` file `symmem import-hf` writes for each family's config."""
    out = {}
    for family in ("gpt2", "llama", "llama_gqa"):
        d = tmp_path_factory.mktemp(family)
        (d / "config.json").write_text(json.dumps(_config(family, "sdpa").to_dict()))
        mem = d / f"{family}.mem"
        res = runner.invoke(app, ["import-hf", str(d / "config.json"), "-o", str(mem)])
        assert res.exit_code == 0, res.output
        out[family] = mem
    return out


#: (targets, dtype, attention, loss, batch, seq): each family runs every row
GRID = [
    ("q_proj,v_proj", "fp32", "eager", True, 2, 16),
    ("q_proj,v_proj", "bf16", "sdpa", False, 1, 32),
    ("q_proj,v_proj", "fp32", "sdpa", True, 4, 8),
    ("all-linear", "bf16", "eager", True, 2, 8),
    ("all-linear", "fp32", "sdpa", False, 1, 16),
    ("all-linear", "bf16", "sdpa", True, 2, 16),
]


@pytest.mark.parametrize("family", ["llama", "llama_gqa", "gpt2"])
@pytest.mark.parametrize("targets,dtype,attn,loss,b,s", GRID)
def test_lora_saved_bytes_exact(
    imported: dict[str, Path],
    family: str,
    targets: str,
    dtype: str,
    attn: str,
    loss: bool,
    b: int,
    s: int,
) -> None:
    """Adapters in the activation dtype (A reads the base's own input): exact to the byte."""
    model = _lora_model(family, attn, DTYPES[dtype], targets, DTYPES[dtype])
    measured = _measure(model, b, s, loss)
    assert _formula(imported[family], attn, dtype, targets, b, s, loss, dtype) == measured


@pytest.mark.parametrize("targets", ["q_proj,v_proj", "all-linear"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_fp32_adapters_on_bf16_keep_their_own_input_copies(
    imported: dict[str, Path], targets: str, attn: str
) -> None:
    """PEFT's default (adapters autocast to fp32) on a bf16 model: each adapter keeps its own
    fp32 cast of its input and A x in fp32; the bf16 input itself is kept by no one.  Exact."""
    model = _lora_model("llama_gqa", attn, torch.bfloat16, targets, torch.float32)
    measured = _measure(model, 2, 16, True)
    mem = imported["llama_gqa"]
    assert _formula(mem, attn, "bf16", targets, 2, 16, True, "fp32") == measured


@pytest.mark.parametrize("targets", ["q_proj,v_proj", "all-linear"])
def test_peft_itself(imported: dict[str, Path], targets: str) -> None:
    """PEFT's own ``get_peft_model`` (default ``autocast_adapter_dtype``: fp32 adapters) on the
    bf16 GQA Llama, sdpa, with the loss: exact.  Under ``torch.autocast`` (mixed precision)
    each adapter's linear keeps autocast's bf16 copy of the fp32-cast input, A x in bf16, and
    bf16 copies of B always and of A when the adapter's input needs a gradient: symmem counts
    A's copy always, so it is over by r x in x 2 bytes for each adapter whose input needs no
    gradient (the first layer's q, k, v: 256 bytes each here)."""
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM(_config("llama_gqa", "sdpa")).to(torch.bfloat16)
    wanted = targets.split(",") if targets != "all-linear" else targets
    config = peft.LoraConfig(r=R, target_modules=wanted, lora_dropout=0.0)
    model = peft.get_peft_model(base, config).train()
    mem = imported["llama_gqa"]
    measured = _measure(model, 2, 16, True)
    assert _formula(mem, "sdpa", "bf16", targets, 2, 16, True, "fp32") == measured
    first_layer_a = {"q_proj,v_proj": 2, "all-linear": 3}[targets] * R * 32 * 2
    mixed = _measure(model, 2, 16, True, autocast=True)
    extra = ("--precision", "mixed-bf16")
    formula = _formula(mem, "sdpa", "bf16", targets, 2, 16, True, "fp32", *extra)
    assert formula - first_layer_a == mixed


LINEARS = """
vocab = 64
model m(input = [batch, seq_len]) {
  embedding tok(vocab, 32)
  rmsnorm n0(32)
  linear q_proj(32, 32, bias = false)
  rmsnorm n1(32)
  linear up(32, 48, bias = false)
  linear down(48, 32, bias = false)
  linear head(32, vocab, bias = false)
}
"""


@pytest.mark.parametrize("quant", [None, "nf4", "int8"])
def test_quantized_base_keeps_inputs_by_its_kernel(quant: str | None) -> None:
    """Hand-derived, bf16 activations and bf16 adapters (no cast), T = batch x seq = 16
    tokens, LoRA r = 4 on q_proj only, no loss, CUDA.  The stream needs no gradient before
    q_proj: the frozen embedding keeps no ids, n0 nothing.  q_proj: its adapter's A keeps x
    (T x 32 x 2 = 1,024 bytes) and B keeps A x (T x 4 x 2 = 128).  From there the stream needs
    a gradient: n1 (HF style, frozen weight) keeps its fp32 input and rstd (T x 32 x 4 + T x 4
    = 2,112), not its normalized output.  The frozen up, down and head keep no input under a
    16-bit base or bitsandbytes' 4-bit MatMul4Bit (which saves ``(None, B)``); LLM.int8's
    MatMul8bitLt saves A whenever it needs a gradient: up's (T x 32 x 2 = 1,024) and down's
    (T x 48 x 2 = 1,536); head (the output layer) stays unquantized and keeps nothing."""
    import symmem

    m = symmem.parse(LINEARS, set_values={"batch": 2, "seq_len": 8})
    opts: dict[str, Any] = {"precision": "bf16", "device": "cuda", "loss": "none"}
    opts |= {"lora_rank": 4, "lora_targets": "q_proj", "lora_dtype": "bf16", "quant": quant}
    got = m.memory("train", **opts).activations.evaluate()
    base = 1024 + 128 + 2112
    assert got == base + (1024 + 1536 if quant == "int8" else 0)
