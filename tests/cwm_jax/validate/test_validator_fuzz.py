"""Bounded fuzzing of the validator: whatever the input, `validate` returns or raises a
CWMError, and never takes 2 s. Generated programs (seeded, so a failure replays) mix
valid CWM syntax with the constructs that once crashed or stalled the checker:
huge ranges and exponents, long operator chains, deep nesting, call chains,
rebinding, and random edits of the reference programs."""

import random
import time

from cwm_jax import envs, reference
from cwm_jax.validate import validator
from cwm_jax.errors import CWMError

BUDGET_S = 3.0  # total fuzzing time of the test
LIMIT_S = 2.0  # the promise: no single input takes longer

_ATOMS = ["state", "action", "x", "1", "0", "2.5", "1e308", "10**9", "(1 << 64)", "9**9**9", "-1", "True",
          "jnp.pi", "math.e", "len(state)", "state.shape[0]", "'float32'", "'a' * 9", "(0.0,)", "[1.0, 2.0]",
          "{'g': 9.8}", "None", "...", "b'x'", "_", "__x", "state._v", "jnp.float32", "lax", "jax.jit", "len"]
_CALLS = ["jnp.where", "jnp.array", "jnp.sin", "jnp.split", "lax.cond", "lax.fori_loop", "range", "open", "eval",
          "getattr", "jax.jit", "math.sqrt", "jnp.ones", "f", "step", "len", "tuple", "print", "jnp.save"]
_BINOPS = ["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "@", "&", "|", "^", " and ", " or ", " if x else "]
_HEADERS = ["import jax\n", "import jax.numpy as jnp\n", "from jax import lax\n", "import math\n", "import os\n",
            "from typing import Tuple\n", "import numpy as np\n", "from jax import numpy as jnp\n"]


def _expr(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(_ATOMS)
    kind = rng.randrange(7)
    if kind == 0:
        return f"({_expr(rng, depth - 1)}{rng.choice(_BINOPS)}{_expr(rng, depth - 1)})"
    if kind == 1:
        args = ", ".join(_expr(rng, depth - 1) for _ in range(rng.randrange(4)))
        keyword = rng.choice(["", ", dtype=jnp.float32", ", device=None", ", **{}", ", compiler_options={}"])
        return f"{rng.choice(_CALLS)}({args}{keyword})"
    if kind == 2:
        return f"{rng.choice(['-', 'not ', '~'])}{_expr(rng, depth - 1)}"
    if kind == 3:
        return f"lambda s: {_expr(rng, depth - 1)}"
    if kind == 4:
        return f"[{_expr(rng, depth - 1)} for i in range({rng.choice(['4', '10**9', '1 << 64', 'len(state)', 'x'])})]"
    if kind == 5:
        return f"{_expr(rng, depth - 1)}({_expr(rng, depth - 1)})"
    return f"{_expr(rng, depth - 1)}[{_expr(rng, depth - 1)}]"


def _statement(rng: random.Random, indent: str, depth: int) -> str:
    target = rng.choice(["x", "y", "_", "len", "jnp", "step", "state", "x, y"])
    kind = rng.randrange(6 if depth > 0 else 3)
    if kind == 0:
        return f"{indent}{target} = {_expr(rng, 4)}\n"
    if kind == 1:
        return f"{indent}return {_expr(rng, 3)}, jnp.float32(1.0), jnp.bool_(False)\n"
    if kind == 2:
        return f"{indent}{target} {rng.choice(['+=', '*=', '**='])} {_expr(rng, 2)}\n"
    body = "".join(_statement(rng, indent + "    ", depth - 1) for _ in range(rng.randrange(1, 4)))
    if kind == 3:
        bound = rng.choice(["4", "100", "1 << 64", "0, 10, 0", "len(state)", "x", "-(1 << 70), 1 << 70, 3"])
        return f"{indent}for i in range({bound}):\n{body}"
    if kind == 4:
        return f"{indent}if {_expr(rng, 2)}:\n{body}"
    return f"{indent}def {rng.choice(['f', 'g', 'step', 'len', '_h'])}(a, b=1):\n{body}"


def _generated(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # a long operator chain, repeated on many lines
        terms = rng.randrange(50, 400)
        return "".join(f"C{i} = " + rng.choice("+*-") .join(["1"] * terms) + "\n" for i in range(rng.randrange(1, 60)))
    if kind == 1:  # deep nesting of one construct
        n = rng.randrange(50, 8000)
        opener, closer = rng.choice([("not ", ""), ("(", ")"), ("[", "]"), ("-", ""), ("f(", ")"), ("lambda: ", "")])
        return "x = " + opener * n + "1" + closer * n + "\n"
    if kind == 2:  # a random edit of a reference program
        text = reference.source(rng.choice(envs.SPECS).name)
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(len(text))
            j = min(len(text), i + rng.randrange(40))
            text = rng.choice([text[:i] + text[j:], text[:i] + text[i:j] * rng.randrange(2, 6) + text[j:],
                               text[:i] + rng.choice(_ATOMS + _BINOPS + ["\n    ", ":", "("]) + text[i:]])
        return text
    if kind == 3:  # a chain of functions
        n = rng.randrange(10, 2000)
        return "".join(f"def f{i}(s):\n    return f{i + 1}(s)\n" for i in range(n))
    header = "".join(rng.sample(_HEADERS, rng.randrange(1, 4)))
    constants = "".join(f"K{i} = {_expr(rng, 3)}\n" for i in range(rng.randrange(3)))
    body = "".join(_statement(rng, "    ", 3) for _ in range(rng.randrange(1, 6)))
    return f"{header}{constants}\ndef step(state, action):\n{body}"


def test_validate_is_total_and_bounded():
    rng = random.Random(20261122)
    deadline = time.perf_counter() + BUDGET_S
    checked = 0
    while time.perf_counter() < deadline or checked < 20:
        source = _generated(rng)
        start = time.perf_counter()
        try:
            validator.validate(source)
        except CWMError as error:
            assert str(error).strip(), f"empty message for {source[:200]!r}"
        # Anything else propagates and fails the test, with the input in the traceback.
        elapsed = time.perf_counter() - start
        assert elapsed < LIMIT_S, f"{elapsed:.2f} s for {source[:200]!r}"
        checked += 1
    assert checked >= 20
