"""Mutation fuzzing of the command line (issue 13): bundled examples and configs, mutated,
through ``symmem`` commands in-process; the only acceptable outcomes are a result (exit 0)
or symmem's own error (exit 1, one message), within a time limit per input.

Used by tests/test_hostile.py (a bounded run under CI) and runnable for a longer campaign::

    python tests/fuzzing.py 5000        # inputs; prints the findings
"""

from __future__ import annotations

import json
import random
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.mem"))
CONFIGS = sorted((ROOT / "tests" / "data" / "hf").glob("*.json"))

#: pieces a mutation may insert: the DSL's own words and symbols, and hostile values
TOKENS = [
    "repeat", "residual", "parallel", "block", "model", "linear", "attention", "(", ")", "{",
    "}", "[", "]", ",", ";", "\n", "=", "+", "-", "*", "/", "//", "%", "^", "0", "1", "-1",
    "1e23", "1e400", "10^9999", "0.5", "batch", "seq_len", "d_model", "heads", "none", "true",
    '"x"', "#", "\ufeff", "\u2028", "\x0b", "9" * 60, "__import__('os')",
]  # fmt: skip
#: hostile replacements for a JSON value
JSON_VALUES: list[Any] = [
    0,
    -1,
    1,
    2,
    3,
    10**30,
    10**9,
    2**64,
    1.5,
    None,
    True,
    "x",
    [],
    {},
    1e308,
    100,
    10**100,
]
#: the commands a mutated input goes through, with their extra arguments
COMMANDS: list[list[str]] = [
    ["params", "--json"],
    ["memory", "--json"],
    ["memory", "--mode", "infer", "--json"],
    ["solve", "--budget", "24GB", "--json"],
    ["sweep", "--grid", "batch=0:3"],
]


@dataclass
class Finding:
    """An input that broke the rule: a traceback, an exit code other than 0 or 1, a hang."""

    what: str
    args: list[str]
    text: str


class Timeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Timeout` in the main thread after ``seconds`` (SIGALRM)."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise Timeout()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def mutate_text(text: str, rng: random.Random) -> str:
    """One to three edits: delete, duplicate, swap or insert a token at a random place."""
    for _ in range(rng.randint(1, 3)):
        if not text:
            text = rng.choice(TOKENS)
            continue
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(1, 12))
        kind = rng.randrange(5)
        if kind == 0:
            text = text[:i] + text[j:]
        elif kind == 1:
            text = text[:j] + text[i:j] + text[j:]
        elif kind == 2:
            text = text[:i] + rng.choice(TOKENS) + text[i:]
        elif kind == 3:  # a number becomes another
            digits = [k for k, ch in enumerate(text) if ch.isdigit()]
            if digits:
                k = rng.choice(digits)
                text = text[:k] + rng.choice(["0", "1e5", "7", "-3", "99999999999"]) + text[k + 1 :]
        else:
            text = text[:i] + text[i:j][::-1] + text[j:]
    return text


def mutate_config(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three fields set to hostile values, removed, or nested deeper."""
    out = dict(data)
    keys = list(out)
    for _ in range(rng.randint(1, 3)):
        if not keys:
            break
        key = rng.choice(keys)
        kind = rng.randrange(4)
        if kind == 0:
            out[key] = rng.choice(JSON_VALUES)
        elif kind == 1:
            out.pop(key, None)
        elif kind == 2 and isinstance(out.get(key), int) and not isinstance(out[key], bool):
            out[key] = out[key] * rng.choice([2, 3, 1000]) + rng.choice([0, 1])
        else:
            out[key] = {"nested": out.get(key)}
    return out


def inputs(n: int, seed: int, workdir: Path) -> Iterator[tuple[list[str], str]]:
    """``n`` (command arguments, input text) pairs, each written to a file in ``workdir``."""
    rng = random.Random(seed)
    for k in range(n):
        if rng.random() < 0.7:
            src = rng.choice(EXAMPLES)
            text = mutate_text(src.read_text(encoding="utf-8"), rng)
            path = workdir / f"in{k}.mem"
        else:
            src = rng.choice(CONFIGS)
            data = json.loads(src.read_text(encoding="utf-8"))
            text = json.dumps(mutate_config(data, rng))
            path = workdir / f"in{k}.json"
        path.write_text(text, encoding="utf-8")
        command = rng.choice(COMMANDS)
        yield [command[0], str(path), *command[1:]], text


def run(args: list[str], seconds: float = 20.0) -> Finding | None:
    """One command in-process; a :class:`Finding` unless it gives a result or symmem's error."""
    from typer.testing import CliRunner

    from symmem.cli import app

    try:
        with time_limit(seconds):
            r = CliRunner().invoke(app, args)
    except Timeout:
        return Finding(f"no answer within {seconds} s", args, "")
    if r.exit_code not in (0, 1):
        return Finding(f"exit code {r.exit_code}: {r.exception!r}", args, r.output[-300:])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return Finding(f"{type(r.exception).__name__}: {r.exception}"[:300], args, "")
    if "Traceback" in r.output:
        return Finding("a traceback in the output", args, r.output[-300:])
    return None


def campaign(n: int, seed: int, workdir: Path, seconds: float = 20.0) -> list[Finding]:
    findings = []
    for args, text in inputs(n, seed, workdir):
        found = run(args, seconds)
        if found is not None:
            found.text = text
            findings.append(found)
    return findings


if __name__ == "__main__":  # pragma: no cover - a long campaign, by hand
    import tempfile

    sys.path.insert(0, str(ROOT))  # this checkout's symmem, not an installed one
    import symmem

    print("symmem from", symmem.__file__)

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with tempfile.TemporaryDirectory() as tmp:
        found = campaign(count, seed, Path(tmp))
    print(f"{count} inputs, {len(found)} findings")
    for f in found:
        print("-", f.what, f.args[0], f.args[2:], repr(f.text[:200]))
