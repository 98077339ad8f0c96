"""The calculator page's data, without a browser: its tables and expressions give the CLI's bytes.

``reference`` below reads a compiled page the way ``symmem/_page/page.js`` does (look the
choices up in the tables, put the inputs and the scale table's 0/1 knobs (ZeRO, offload,
cp, DualPipe) into the selected expressions, add the components), in Python over sympy
numbers, and is compared with the full memory build (:meth:`Model.memory`, what
``symmem memory --json`` prints) on a grid of settings: this checks the reductions the
page relies on (each side built under its own structure; ZeRO, offload, context
parallelism and the schedule as knobs; the implementation read by the activation side
only) and the tables.  The JavaScript itself is checked in a browser (tests/test_page_browser.py).
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

import pytest
import sympy

from symmem.errors import OptionError, SymmemError
from symmem.gpus import gpu
from symmem.jscode import js_function
from symmem.memory import COMPONENTS
from symmem.model import load, parse
from symmem.options import MemoryOptions
from symmem.page import (
    FIELDS,
    SCALE_FIELDS,
    Page,
    _fixed,
    _initial,
    compile_page,
    render_page,
)
from symmem.serving import ServingOptions, plan
from symmem.symbols import sym


@pytest.fixture(scope="module")
def gpt2_page() -> Page:
    return compile_page(load("gpt2"))


def _index(page: Page, mode: str, table: str, state: dict[str, Any]) -> int:
    t = page.data["modes"][mode][table]
    fields = {f.name: f.choices for f in (*FIELDS[mode], *SCALE_FIELDS[mode])}
    fields["pp"] = fields["cp"] = ("1", "2+")
    i = 0
    for name in t["fields"]:
        degree = name in ("pp", "cp")
        chosen = ("2+" if state[name] > 1 else "1") if degree else state[name]
        i = i * len(fields[name]) + fields[name].index(chosen)
    return int(t["values"][i])


def reference(page: Page, state: dict[str, Any]) -> dict[str, Any] | str:
    """The page's numbers for one form state, read from its data as page.js reads them."""
    d, mode = page.data, state["mode"]
    cells = [_index(page, mode, t, state) for t in ("bytes", "scale", "states", "activations")]
    for c in cells:
        if c < 0:
            return str(d["errors"][-1 - c])
    b, k, s, a = cells
    row = d["bytes"][b]
    values = {
        "tp": state["tp"],
        "pp": state["pp"],
        "dp": state["dp"],
        "ep": state["ep"],
        "weight_bytes": row[0],
        "grad_bytes": row[1],
        "state_bytes": row[2],
        "kv_bytes": row[3],
        "master": row[4],
        "grad_copy": row[5],
        "overhead": state["overhead"],
        "micro_batches": state["pp"],
        "lora_rank": state["lora_rank"],
        "batch": state["batch"],
        "seq_len": state["seq_len"],
        "cp": state["cp"],
        **dict(zip(d["scale_knobs"], d["scale"][k], strict=True)),
    }
    at = {
        arg: sympy.Rational(str(values[name]))
        for arg, name in zip(page.args, d["args"], strict=True)
    }
    out: dict[str, Any] = {"overhead": int(state["overhead"])}
    for name, fn in zip(d["states"], d["parts"][s]["fn"], strict=True):
        out[name] = page.expressions[fn].xreplace(at)
    for name, fn in zip(d["activations"], d["parts"][a]["fn"], strict=True):
        out[name] = page.expressions[fn].xreplace(at)
    out["total"] = sum(out[c] for c in COMPONENTS)
    return {k: int(v) if sympy.sympify(v).is_Integer else str(v) for k, v in out.items()}


def _options(state: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"mode": state["mode"], "precision": state["precision"]}
    if state["mode"] == "train":
        kw.update(
            optimizer=state["optimizer"],
            checkpointing=state["checkpointing"],
            zero=int(state["zero"]),
        )
        if state["lora"] != "off":
            kw.update(lora_rank=state["lora_rank"], lora_targets=state["lora"])
    elif state["kv_dtype"] != "default":
        kw["kv_dtype"] = state["kv_dtype"]
    if state["quant"] != "none":
        kw["quant"] = state["quant"]
    if state.get("offload", "none") != "none":
        kw["offload"] = state["offload"]
    kw.update({k: state[k] for k in ("tp", "pp", "dp", "ep", "cp", "overhead", "impl", "schedule")})
    return kw


def _states(n: int, seed: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        mode = "train" if i % 4 else "infer"
        s: dict[str, Any] = {f.name: rng.choice(f.choices) for f in FIELDS[mode]}
        s.update(mode=mode, zero=s.get("zero", "0"))
        for f in SCALE_FIELDS[mode]:
            if f.name not in ("cp", "pp", "zero"):
                s[f.name] = rng.choice(f.choices) if rng.random() < 0.5 else f.choices[0]
        s.update(
            tp=rng.choice([1, 2, 4]),
            pp=rng.choice([1, 1, 3]),
            dp=rng.choice([1, 3, 8]),
            cp=rng.choice([1, 1, 2]),
            ep=1,
            lora_rank=rng.choice([1, 8, 32]),
            overhead=rng.choice([0, 2**30]),
            batch=rng.choice([1, 7, 10**9]),
            seq_len=rng.choice([64, 1024]),
        )
        out.append(s)
    return out


def test_page_numbers_equal_full_builds(gpt2_page: Page) -> None:
    m0 = load("gpt2")
    compared = 0
    for state in _states(80, "gpt2-page"):
        m = m0.with_values({"batch": state["batch"], "seq_len": state["seq_len"]})
        try:
            expected = m.memory(**_options(state)).to_json()["bytes"]
        except OptionError as exc:
            assert reference(gpt2_page, state) == str(exc) or isinstance(
                reference(gpt2_page, state), str
            )
            continue
        assert reference(gpt2_page, state) == expected, state
        compared += 1
    assert compared >= 40


def test_every_zero_stage_and_checkpointing(gpt2_page: Page) -> None:
    """The two reductions on every value of the choices they ignore."""
    m = load("gpt2", set_values={"batch": 3, "seq_len": 256})
    base = {
        "mode": "train",
        "precision": "mixed-bf16",
        "optimizer": "adamw",
        "lora": "off",
        "quant": "none",
        "tp": 2,
        "pp": 1,
        "dp": 8,
        "ep": 1,
        "lora_rank": 8,
        "overhead": 0,
        "cp": 1,
        "impl": "torch",
        "schedule": "1f1b",
        "offload": "none",
        "batch": 3,
        "seq_len": 256,
    }
    for zero, ckpt, pp in itertools.product("0123", ("none", "selective", "full"), (1, 2)):
        state = {**base, "zero": zero, "checkpointing": ckpt, "pp": pp}
        expected = m.memory(**_options(state)).to_json()["bytes"]
        assert reference(gpt2_page, state) == expected, (zero, ckpt, pp)


def test_scale_choices_and_impl(gpt2_page: Page) -> None:
    """ZeRO, offload, context parallelism and the schedule as 0/1 knobs of one structure, and
    each implementation on the activation side only: a sample of their product against full
    builds (refusals included: offloading parameters needs ZeRO 3, a schedule needs pp > 1)."""
    m = load("gpt2", set_values={"batch": 2, "seq_len": 512})
    grid = list(
        itertools.product(
            "0123",
            [f.choices for f in SCALE_FIELDS["train"] if f.name == "offload"][0],
            ("1f1b", "dualpipe", "dualpipev"),
            (1, 2),
            (1, 2),
            ("torch", "transformers", "megatron"),
        )
    )
    rng = random.Random("scale")
    compared = refused = 0
    for zero, offload, schedule, cp, pp, impl in rng.sample(grid, 36):
        state = {
            "mode": "train",
            "precision": "mixed-bf16",
            "optimizer": "adamw",
            "checkpointing": rng.choice(("none", "selective", "full")),
            "lora": "off",
            "quant": "none",
            "zero": zero,
            "tp": 2,
            "pp": pp,
            "dp": 4,
            "ep": 1,
            "cp": cp,
            "lora_rank": 8,
            "overhead": 0,
            "offload": offload,
            "schedule": schedule,
            "impl": impl,
            "batch": 2,
            "seq_len": 512,
        }
        try:
            expected = m.memory(**_options(state)).to_json()["bytes"]
        except OptionError as exc:
            assert reference(gpt2_page, state) == str(exc), state
            refused += 1
            continue
        assert reference(gpt2_page, state) == expected, state
        compared += 1
    assert compared >= 12 and refused >= 4, (compared, refused)


def test_refusals_are_the_clis(gpt2_page: Page) -> None:
    state = {
        "mode": "train",
        "precision": "fp32",
        "optimizer": "adamw",
        "checkpointing": "none",
        "zero": "0",
        "lora": "off",
        "quant": "nf4",
        "tp": 1,
        "pp": 1,
        "dp": 1,
        "ep": 1,
        "lora_rank": 8,
        "overhead": 0,
        "cp": 1,
        "impl": "torch",
        "schedule": "1f1b",
        "offload": "none",
        "batch": 1,
        "seq_len": 8,
    }
    with pytest.raises(OptionError) as err:
        load("gpt2").memory(**_options(state))
    assert reference(gpt2_page, state) == str(err.value)


def test_sizes_a_degree_must_divide(gpt2_page: Page) -> None:
    """tp must divide gpt2's 12 heads: the page checks the sizes the CLI checks."""
    sizes = gpt2_page.data["sizes"]
    assert any(opt == "tp" and value == 12 for opt, _, value, _ in sizes)
    with pytest.raises(OptionError, match=r"tp = 5 does not divide"):
        load("gpt2").memory(tp=5)


def test_js_function_is_exact_rational_code() -> None:
    b, t = sym("batch"), sympy.Symbol("t", positive=True)
    code = js_function([sympy.Rational(1, 3) * b / t + sympy.Max(b, 2**60)], [b, t])
    assert "[1n,3n]" in code and "1152921504606846976n" in code and "max(" in code
    assert "Math." not in code and "/" not in re.sub(r"\[\d+n,\d+n\]", "", code)


def test_js_refuses_what_it_cannot_do_exactly() -> None:
    b = sym("batch")
    with pytest.raises(SymmemError, match="non-integer power"):
        js_function([sympy.sqrt(b)], [b])
    with pytest.raises(SymmemError, match="no exact JavaScript"):
        js_function([sympy.sin(b)], [b])
    with pytest.raises(SymmemError, match="has no value"):
        js_function([b * sym("other")], [b])


def test_page_is_self_contained(gpt2_page: Page) -> None:
    text = render_page(gpt2_page, "gpt2")
    assert "<script src" not in text and "<link" not in text
    assert "http://" not in text and "https://" not in text.replace("https://github.com", "")
    assert "prefers-color-scheme: dark" in text and "<math" in text
    assert text.count("{{") == 0


def test_page_options_set_the_first_state_and_refuse_what_it_lacks(gpt2_page: Page) -> None:
    """The form's first state comes from the options (``_initial``, wired into the page's
    data: the shared page shows the defaults' state), options the form lacks are fixed for
    the whole page (``_fixed``), and those it cannot honour are refused before any build."""
    gpt2 = load("gpt2")
    free = gpt2_page.data["free"]
    assert gpt2_page.data["initial"] == _initial(MemoryOptions(), gpt2, free)
    assert gpt2_page.data["fixed"] == {}
    initial = _initial(MemoryOptions(mode="infer", precision="bf16", tp=4), gpt2, free)
    assert initial["mode"] == "infer"
    assert initial["precision"] == "bf16" and initial["tp"] == 4
    assert _fixed(MemoryOptions(attention="eager")) == {"attention": "eager"}
    with pytest.raises(OptionError, match="does not offer 'sp'"):
        compile_page(gpt2, MemoryOptions(tp=2, sp=True))


def test_user_free_symbol_becomes_an_input() -> None:
    text = """
d = 16
model tiny(input = [batch, seq_len, d]) {
  linear fc(d, 4 * d)
}
"""
    m = parse(text, free=["d"])
    page = compile_page(m)
    assert page.data["free"] == ["batch", "seq_len", "d"]
    assert page.data["initial"]["d"] == 16
    state = {
        "mode": "infer",
        "precision": "fp32",
        "kv_dtype": "default",
        "quant": "none",
        "zero": "0",
        "tp": 1,
        "pp": 1,
        "dp": 1,
        "ep": 1,
        "lora_rank": 8,
        "overhead": 0,
        "cp": 1,
        "impl": "torch",
        "schedule": "1f1b",
        "offload": "none",
        "batch": 2,
        "seq_len": 5,
    }
    d = sym("d")
    at = {**{s: sympy.Integer(1) for s in page.args}, d: sympy.Integer(16)}
    weights = page.data["parts"][_index(page, "infer", "states", state)]["fn"][0]
    # the scale table's row of the default choices (no offload, cp, DualPipe; ZeRO 0)
    row = page.data["scale"][_index(page, "infer", "scale", {**state, "cp": 1})]
    flags = dict(zip(page.data["scale_knobs"], row, strict=True))
    point = {**at, page.args[page.data["args"].index("weight_bytes")]: 4}
    point.update({page.args[page.data["args"].index(k)]: int(v) for k, v in flags.items()})
    assert page.expressions[weights].xreplace(point) == 4 * (16 * 64 + 64)


def test_serving_terms_equal_the_plan(gpt2_page: Page) -> None:
    """The serving mode's expressions (vLLM, symmem.serving.vllm.single_stage_terms over the
    memory model's weights, KV bytes per token and forward peak) give ``plan``'s numbers,
    with the engine's defaults (batched tokens, sequences, non-torch bytes) as outputs of the
    same expressions; the browser test checks the page's JavaScript against the CLI."""
    terms = gpt2_page.serving
    assert terms is not None
    data = gpt2_page.data["serving"]
    symbols = {s.name: s for e in terms.values() for s in e.free_symbols}
    m = load("gpt2")
    rng = random.Random("serving")
    compared = 0
    for _ in range(16):
        g = gpu(rng.choice(["h100-80gb", "a100-40gb", "l4", "b200"]))
        tp, kv = rng.choice([1, 2, 4]), rng.choice(["auto", "fp8"])
        u, length = rng.choice([0.9, 0.7, 1.0]), rng.choice([1024, 4096, 10**6])
        o = ServingOptions(
            gpu=g.key, tp=tp, kv_dtype=kv, gpu_memory_utilization=u, max_model_len=length
        )
        expected = plan(m, o).to_json()
        given = {
            "option_tp": tp,
            "option_kv_bytes": sympy.Rational(data["kv_dtypes"][kv]),
            "budget": g.cuda_total_bytes,
            "gpu_memory_utilization": sympy.Rational(str(u)),
            "max_model_len": length,
            "block_size": data["block_size"],
            "nvlink": int(g.nvlink),
            "a100": int("a100" in g.name.lower()),
            "cuda_graph": 0,
        }
        at = {symbols[k]: v for k, v in given.items() if k in symbols}
        for name in ("max_num_batched_tokens", "max_num_seqs", "non_torch"):
            at[symbols[name]] = terms[f"default_{name}"].xreplace(at)
        for name, expr in terms.items():
            if name.startswith("default_"):
                continue
            value = expr.xreplace(at)
            if name == "max_concurrency":
                assert float(value) == expected[name], (o, name)
            else:
                assert int(value) == int(expected[name]), (o, name, value, expected[name])
        compared += 1
    assert compared == 16


def test_serving_mode_refused_without_attention() -> None:
    page = compile_page(load("resnet50"))
    assert page.serving is None and "no attention" in page.data["serving"]["why"]


def test_scale_options_set_the_first_state() -> None:
    """--impl, --cp, --offload and --schedule are fields of the form now: they set its first
    state instead of being fixed for every choice."""
    m = parse("d = 16\nmodel tiny(input = [batch, seq_len, d]) {\n  linear fc(d, 4 * d)\n}\n")
    given = {"impl": "megatron", "cp": 2, "offload": "optimizer", "zero": 3, "dp": 8}
    page = compile_page(m, MemoryOptions.from_user({**given, "pp": 2, "schedule": "dualpipe"}))
    initial = page.data["initial"]
    assert page.data["fixed"] == {}
    assert (initial["impl"], initial["cp"], initial["offload"]) == ("megatron", 2, "optimizer")
    assert (initial["schedule"], initial["zero"], initial["pp"]) == ("dualpipe", "3", 2)
