"""The hostile catalogue: every program is rejected with a clear, typed message and runs nothing.

The canary lives at a short path (well under the validator's string limit, so
a payload is never rejected only for its length) inside a fresh directory, and
the tests assert that nothing at all appeared there: a file of any name, a
`.npy` suffix, or a folder of XLA dumps.
"""

import os
import tempfile

import pytest

from cwm_jax import envs, reference
from cwm_jax.commands import main as cli
from cwm_jax.commands import common as command
from cwm_jax.validate import contract
from cwm_jax.validate import loader
from cwm_jax.validate import validator
from cwm_jax.errors import CWMError, CWMValidationError
from cwm_jax.models import load_model
from tests.hostile_programs import HOSTILE


@pytest.fixture
def watched():
    """(directory, canary path): a short path whose directory must stay empty."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="c") as directory:
        canary = os.path.join(directory, "k")
        assert len(canary) < contract.MAX_STRING // 2
        yield directory, canary
        assert os.listdir(directory) == [], "a payload ran: something was created in the watched directory"


def _said(text: str) -> str:
    """The message without its quoted source lines (a fragment must not match the program's own text)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("    ")).lower()


def _expect(case, error: CWMError) -> None:
    assert error.kind == case.kind, str(error)
    assert case.mentions.lower() in _said(str(error)), str(error)
    assert str(error).strip() and "Traceback" not in str(error)


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_program_is_rejected(case, watched):
    with pytest.raises(CWMError) as info:
        loader.load_cwm(case.render(watched[1]), "CartPole")
    _expect(case, info.value)


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_program_is_rejected_by_check(case, watched, tmp_path, capsys):
    """`python -m cwm_jax check FILE` (in-process): exit 1 and the expected message, nothing created."""
    model = tmp_path / "model.py"
    model.write_text(case.render(watched[1]))
    assert cli.main(["check", str(model), "--env", "CartPole", "--json"]) == command.EXIT_FAILED
    payload = __import__("json").loads(capsys.readouterr().out)
    assert payload["valid"] is False
    assert case.mentions.lower() in _said(payload["error"]), payload["error"]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_program_is_rejected_by_plan(case, watched, tmp_path):
    """`cwm-jax plan --model FILE` loads a model in-process only after the sandbox and a second validation."""
    model = tmp_path / "model.py"
    model.write_text(case.render(watched[1]))
    with pytest.raises(CWMError) as info:
        load_model(envs.env_spec("CartPole"), str(model), say=lambda text: None)
    assert case.mentions.lower() in _said(str(info.value)), str(info.value)


def test_every_hostile_entry_names_its_rejection():
    assert all(case.mentions.strip() for case in HOSTILE)
    assert len({case.name for case in HOSTILE}) == len(HOSTILE)


def test_catalogue_is_large_enough():
    assert len(HOSTILE) >= 25


def test_messages_name_the_line():
    source = "import jax.numpy as jnp\n\ndef step(state, action):\n    if state[0] > 0:\n        state = -state\n" \
             "    return state, jnp.float32(1.0), jnp.bool_(False)\n"
    with pytest.raises(CWMError) as info:
        loader.load_cwm(source, "CartPole")
    assert str(info.value).startswith("line 4: ")
    assert "if state[0] > 0:" in str(info.value)


def test_static_rejection_names_line_and_alternative():
    source = "import jax.numpy as jnp\n\ndef step(state, action):\n    while state[0] > 0:\n        pass\n"
    with pytest.raises(CWMValidationError) as info:
        validator.validate(source)
    assert info.value.line == 4
    assert "lax.fori_loop" in str(info.value)


FORI_BOUND = """import jax.numpy as jnp
from jax import lax
ROWS = 4
COLS = 6


def step(state, action):
    x = lax.fori_loop(0, BOUND, lambda i, s: s * 0.5, state[0])
    return state.at[0].set(x), jnp.float32(0.0), jnp.bool_(False)
"""


@pytest.mark.parametrize("bound", ["max(ROWS, COLS)", "min(ROWS, 2 * COLS)", "abs(ROWS - COLS)"])
def test_builtin_max_min_abs_of_constants_are_constant_loop_bounds(bound):
    """A real model wrote `lax.fori_loop(0, max(ROWS, COLS), ...)` for a grid world; it was rejected."""
    validator.validate(FORI_BOUND.replace("BOUND", bound))


@pytest.mark.parametrize("bound", ["max(ROWS, 10 ** 9)", "max(ROWS, state[0])", "abs(-(10 ** 6))"])
def test_a_folded_bound_is_still_limited_and_must_be_constant(bound):
    with pytest.raises(CWMValidationError, match="constant integer bounds"):
        validator.validate(FORI_BOUND.replace("BOUND", bound))


def test_rules_text_matches_enforced_limits():
    text = contract.rules_text()
    assert f"N <= {contract.MAX_RANGE}" in text
    assert str(contract.MAX_FORI_LOOP) in text
    for name in contract.ALLOWED_BUILTINS:
        assert name in text


@pytest.mark.parametrize(
    "snippet",
    [
        "    x = jnp.where(state[0] > 0, 1.0, -1.0)\n",
        "    for i in range(4):\n        if i == 2:\n            state = state.at[i].set(0.0)\n",
        "    x = lax.cond(action == 1, lambda s: s, lambda s: -s, state)\n",
        "    x = lax.fori_loop(0, 10, lambda i, s: s * 0.5, state)\n",
        "    xs = jnp.stack([state[i] * 2.0 for i in range(4)])\n",
        "    n = jnp.linalg.norm(state) + math.pi + jnp.clip(state, -1.0, 1.0).sum()\n",
        "    for i in range(len(state)):\n        state = state.at[i].set(state[i] * 0.5)\n",
        "    xs = [state[i] for i in range(state.shape[0])]\n",
        "    x, x_dot, theta, theta_dot = state\n    y = jnp.float64(x) + jnp.int64(1)\n",
    ],
)
def test_idiomatic_jax_is_accepted(snippet):
    source = ("import math\nimport jax\nimport jax.numpy as jnp\nfrom jax import lax\n\nLIMIT = 2 * math.pi\n\n"
              "def step(state, action):\n" + snippet + "    return state, jnp.float32(1.0), jnp.bool_(False)\n")
    step = loader.load_cwm(source, "CartPole")
    assert callable(step)


def test_reference_passes_validator():
    validator.validate(reference.source("CartPole"))


def test_type_hints_and_jit_decorator_are_accepted():
    source = ("import jax\nimport jax.numpy as jnp\n\n\n@jax.jit\n"
              "def step(state: jax.Array, action: jnp.ndarray) -> tuple:\n"
              "    return state, jnp.float32(1.0), jnp.bool_(False)\n")
    assert callable(loader.load_cwm(source, "CartPole"))


def test_main_guard_gets_a_specific_message():
    source = ("import jax.numpy as jnp\n\ndef step(state, action):\n    return state, 1.0, False\n\n"
              "if __name__ == '__main__':\n    print(step(jnp.zeros(4), 0))\n")
    with pytest.raises(CWMValidationError, match="__main__"):
        validator.validate(source)


def test_math_on_traced_values_points_to_jnp():
    source = ("import math\nimport jax.numpy as jnp\n\ndef step(state, action):\n"
              "    s = math.sin(state[2])\n    return state, jnp.float32(s), jnp.bool_(False)\n")
    with pytest.raises(CWMError, match="jnp.sin") as info:
        loader.load_cwm(source, "CartPole")
    assert info.value.line == 5
