"""The calculator page in a real browser: every number it shows equals ``symmem memory --json``.

Headless Chromium (Debian's ``chromium`` package; .ci/run installs it) opens the page
generated for three bundled models (a dense LLM, a MoE, a CNN) with ``#test=<settings>``:
the page puts each setting into its form, runs its own update and writes what its table
shows into ``<pre id="test-output">``, which ``--dump-dom`` returns.  Each setting is also
run through the CLI (``symmem memory --json``, in-process) and, for the largest batch that
fits, through ``symmem.solve.solve``.  Screenshots (desktop light, phone dark) and the
timings the page measured are kept in ``.artifacts/`` (not committed; docs/page.md).

Skipped, with the reason, when no ``chromium`` is installed.
"""

from __future__ import annotations

import base64
import html
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from symmem.cli import build_app
from symmem.gpus import gpu
from symmem.model import load
from symmem.page import FIELDS, SCALE_FIELDS, write_page
from symmem.solve import solve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium: install Debian's package (apt-get install chromium; .ci/run does)",
)
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("SYMMEM_ARTIFACTS", ROOT / ".artifacts"))
#: a dense LLM, a MoE, a CNN
MODELS = ("gpt2", "mixtral-8x7b", "resnet50")
SETTINGS_PER_MODEL = 110
#: settings the CLI accepts that each model's page must match (the acceptance: at least 50)
AT_LEAST = 50
BUDGET = gpu("h100-80gb").capacity_bytes


def chromium(url: str, *extra: str, timeout: int = 120) -> str:
    """Run headless Chromium on ``url`` with a fresh profile and no network; its stdout."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            *extra,
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return done.stdout


def settings(model: str, n: int) -> list[dict[str, Any]]:
    """``n`` form states drawn over every field of the page (seeded): choices, degrees, sizes
    past 2**53, degrees that leave fractions, and combinations the CLI refuses."""
    rng = random.Random(f"page-{model}")
    out: list[dict[str, Any]] = []
    for i in range(n):
        mode = "train" if i % 3 else "infer"
        s: dict[str, Any] = {"mode": mode}
        for f in FIELDS[mode]:
            s[f.name] = rng.choice(f.choices)
        if mode == "train" and rng.random() < 0.6:
            s["lora"] = "off"  # keep most settings valid: no LoRA target in a CNN
        if mode == "train" and s["lora"] == "off" and rng.random() < 0.9:
            s["quant"] = "none"  # quantized training needs LoRA
        for f in SCALE_FIELDS[mode]:
            if f.name in ("schedule", "offload"):  # mostly off: they need pp > 1 / ZeRO 3
                s[f.name] = rng.choice(f.choices) if rng.random() < 0.3 else f.choices[0]
        s["cp"] = rng.choice([1, 1, 1, 2])
        s["tp"] = rng.choice([1, 1, 2, 4, 8])
        s["pp"] = rng.choice([1, 1, 1, 1, 2, 4])
        if model == "resnet50" and i % 10 != 5:
            s["pp"] = 1  # its uneven stages refuse every pp > 1: one case in ten says so
        s["dp"] = rng.choice([1, 2, 3, 8, 64])
        s["ep"] = rng.choice([1, 1, 2, 8])
        s["lora_rank"] = rng.choice([4, 8, 16, 64])
        s["overhead"] = rng.choice([0, 2**30, 123456789])
        s["batch"] = rng.choice([1, 2, 8, 24, 1_000_003]) if i % 10 else 10**9
        s["seq_len"] = rng.choice([128, 1000, 2048, 8192])
        out.append(s)
    return out


def cli_args(model: str, s: dict[str, Any]) -> list[str]:
    args = [model, "--json", "--mode", s["mode"], "--precision", s["precision"]]
    if s["mode"] == "train":
        args += ["--optimizer", s["optimizer"], "--checkpointing", s["checkpointing"]]
        args += ["--zero", str(s["zero"])]
        if s["lora"] != "off":
            args += ["--lora-rank", str(s["lora_rank"]), "--lora-targets", s["lora"]]
    elif s["kv_dtype"] != "default":
        args += ["--kv-dtype", s["kv_dtype"]]
    if s["quant"] != "none":
        args += ["--quant", s["quant"]]
    if s.get("offload", "none") != "none":
        args += ["--offload", s["offload"]]
    args += ["--impl", s["impl"], "--schedule", s["schedule"]]
    for name in ("tp", "pp", "dp", "ep", "cp", "overhead"):
        args += [f"--{name}", str(s[name])]
    args += ["--set", f"batch={s['batch']}"]
    if model != "resnet50":
        args += ["--set", f"seq_len={s['seq_len']}"]
    return args


def page_results(path: Path, cases: list[dict[str, Any]]) -> dict[str, Any]:
    code = base64.urlsafe_b64encode(json.dumps(cases).encode()).decode()
    # the page runs its test cases while it loads, before --dump-dom reads the DOM
    dom = chromium(f"{path.as_uri()}#test={code}", "--dump-dom")
    found = re.search(r'<pre id="test-output"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, "the page wrote no test output:\n" + dom[-2000:]
    doc: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return doc


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def pages() -> dict[str, tuple[Path, int]]:
    """Each model's page, written once for the module (the memory and the serving tests)."""
    return {}


def _page(pages: dict[str, tuple[Path, int]], model: str, tmp: Path) -> tuple[Path, int]:
    if model not in pages:
        path = tmp / f"{model}.html"
        pages[model] = (path, write_page(load(model), path, source=model))
    return pages[model]


@pytest.mark.parametrize("model", MODELS)
def test_page_equals_cli(
    model: str,
    runner: CliRunner,
    pages: dict[str, tuple[Path, int]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    page, size = _page(pages, model, tmp_path_factory.mktemp("pages"))
    cases = settings(model, SETTINGS_PER_MODEL)
    doc = page_results(page, cases)
    results = doc["results"]
    assert len(results) == len(cases)
    # the parameter count the page computes from its compiled expression (batch-independent)
    params = load(model).params()
    assert f"{int(params.total):,} parameters" in doc["params"]
    app = build_app("memory")
    compared = refused = solved = fractions = big = 0
    for i, (case, shown) in enumerate(zip(cases, results, strict=True)):
        done = runner.invoke(app, ["memory", *cli_args(model, case)])
        if done.exit_code != 0:
            assert "error" in shown, (case, done.output, shown)
            refused += 1
            continue
        assert "error" not in shown, (case, shown)
        expected = json.loads(done.stdout)["bytes"]
        assert shown["bytes"] == {k: str(v) for k, v in expected.items()}, case
        compared += 1
        fractions += any("/" in v for v in shown["bytes"].values())
        big += int(shown["bytes"]["total"].split("/")[0]) > 2**53
        if i % 4 == 1 and case["batch"] < 10**6:
            m = load(model, set_values={"batch": case["batch"], "seq_len": case["seq_len"]})
            opts = {k: v for k, v in case.items() if k not in ("batch", "seq_len")}
            total = m.memory(**_options(opts)).total
            answer = solve(total, BUDGET, "batch")
            value = answer.value if answer.method not in ("constant", "unbounded") else None
            if answer.value is not None and answer.method not in ("constant", "unbounded"):
                assert shown["largest"] == str(value), case
                solved += 1
    assert compared >= AT_LEAST and refused >= 1, (compared, refused)
    assert solved >= 3
    # exactness where doubles fail: values past 2**53, and fractions (a degree that does not
    # divide a tensor), shown as the CLI shows them
    assert big >= 2, big
    if model != "resnet50":
        assert fractions >= 1, fractions
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"page-{model}.json").write_text(
        json.dumps(
            {
                "model": model,
                "page_bytes": size,
                "settings": len(cases),
                "compared": compared,
                "refused": refused,
                "solved": solved,
                "open_ms": doc["open_ms"],
                "update_ms": doc["update_ms"],
                "since_navigation_ms": doc["since_navigation_ms"],
            },
            indent=2,
        )
    )
    shutil.copy(page, ARTIFACTS / page.name)
    chromium(
        page.as_uri(), "--window-size=1280,1500", f"--screenshot={ARTIFACTS / f'page-{model}.png'}"
    )
    chromium(
        page.as_uri(),
        "--window-size=390,1400",
        "--blink-settings=preferredColorScheme=0",
        f"--screenshot={ARTIFACTS / f'page-{model}-phone-dark.png'}",
    )
    assert (ARTIFACTS / f"page-{model}.png").stat().st_size > 10_000


def _options(s: dict[str, Any]) -> dict[str, Any]:
    """A page setting as the keyword options of ``Model.memory`` (as cli_args spells them)."""
    kw: dict[str, Any] = {"mode": s["mode"], "precision": s["precision"]}
    if s["mode"] == "train":
        kw.update(optimizer=s["optimizer"], checkpointing=s["checkpointing"], zero=int(s["zero"]))
        if s["lora"] != "off":
            kw.update(lora_rank=s["lora_rank"], lora_targets=s["lora"])
    elif s["kv_dtype"] != "default":
        kw["kv_dtype"] = s["kv_dtype"]
    if s["quant"] != "none":
        kw["quant"] = s["quant"]
    if s.get("offload", "none") != "none":
        kw["offload"] = s["offload"]
    kw.update({k: s[k] for k in ("tp", "pp", "dp", "ep", "cp", "overhead", "impl", "schedule")})
    return kw


#: serving settings per model (dense and MoE): the acceptance of the serving mode
SERVING_SETTINGS = 40
SERVING_MODELS = ("gpt2", "mixtral-8x7b")


def serving_settings(model: str, n: int) -> list[dict[str, Any]]:
    """``n`` serving states of the form (seeded): catalogued GPUs and a custom budget, tp,
    the KV dtype, the utilization, the context, the block, and the engine's defaults left
    empty or given."""
    rng = random.Random(f"serve-{model}")
    out: list[dict[str, Any]] = []
    for i in range(n):
        s: dict[str, Any] = {
            "mode": "serve",
            "gpu": rng.choice(["h100-80gb", "a100-40gb", "a100-80gb", "l4", "b200", "custom"]),
            "budget": rng.choice(["24", "80", "141.5"]),
            "tp": rng.choice([1, 2, 4, 8]),
            "serve_kv": rng.choice(["auto", "auto", "fp8", "bf16"]),
            "gmu": rng.choice(["0.9", "0.9", "0.7", "0.85", "1"]),
            "max_model_len": rng.choice([512, 1024, 4096, 32768, 10**6]),
            "block_size": rng.choice([16, 16, 32]),
            "max_num_batched_tokens": rng.choice(["", "", 512, 8192]),
            "max_num_seqs": rng.choice(["", "", 16, 1024]),
            "non_torch": rng.choice(["", "", 0, 123456789]),
            "cuda_graph": rng.choice([0, 0, 2**30]),
        }
        if i == 0:
            s["tp"] = 5  # divides no head count: refused by both
        out.append(s)
    return out


def serving_args(model: str, s: dict[str, Any]) -> list[str]:
    args = ["serving", model, "--json", "--tp", str(s["tp"]), "--kv-dtype", s["serve_kv"]]
    if s["gpu"] == "custom":
        # the page reads its budget in GiB, to the byte (as symmem's parse_bytes does)
        args += ["--budget", str(int(float(s["budget"]) * 2**30))]
    else:
        args += ["--gpu", s["gpu"]]
    args += ["--gpu-memory-utilization", s["gmu"], "--max-model-len", str(s["max_model_len"])]
    args += ["--block-size", str(s["block_size"])]
    for name, flag in (
        ("max_num_batched_tokens", "--max-num-batched-tokens"),
        ("max_num_seqs", "--max-num-seqs"),
        ("non_torch", "--non-torch"),
    ):
        if s[name] != "":
            args += [flag, str(s[name])]
    args += ["--cuda-graph-memory", str(s["cuda_graph"])]
    return args


@pytest.mark.parametrize("model", SERVING_MODELS)
def test_page_serving_equals_cli(
    model: str,
    runner: CliRunner,
    pages: dict[str, tuple[Path, int]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every number of the serving mode equals ``symmem serving --json`` (vLLM)."""
    page, _ = _page(pages, model, tmp_path_factory.mktemp("pages"))
    cases = serving_settings(model, SERVING_SETTINGS)
    results = page_results(page, cases)["results"]
    app = build_app("serving")
    compared = refused = not_starting = defaults = 0
    for case, shown in zip(cases, results, strict=True):
        done = runner.invoke(app, serving_args(model, case))
        if done.exit_code != 0:
            assert "error" in shown, (case, done.output, shown)
            refused += 1
            continue
        assert "error" not in shown, (case, shown)
        expected = json.loads(done.stdout)
        got = shown["serving"]
        outputs = [n for n in got if not n.startswith("default_")]
        assert set(outputs) <= set(expected), outputs
        for name in outputs:
            value = expected[name]
            if name == "max_concurrency":
                assert float(Fraction(got[name])) == value, (case, name)
            elif name == "starts":
                assert got[name] == str(int(value)), (case, name)
            elif isinstance(value, int) and not isinstance(value, bool):
                assert got[name] == str(value), (case, name, got[name], value)
        # the engine's defaults the page filled in are the CLI's settings
        for name in ("max_num_batched_tokens", "max_num_seqs"):
            assert got[f"default_{name}"] == str(expected["settings"][name]["value"]) or (
                case[name] != ""
            ), (case, name)
        defaults += case["max_num_batched_tokens"] == "" or case["non_torch"] == ""
        compared += 1
        not_starting += not expected["starts"]
    assert compared >= 25 and refused >= 1 and not_starting >= 1 and defaults >= 5, (
        compared,
        refused,
        not_starting,
        defaults,
    )
