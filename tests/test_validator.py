"""The hostile catalogue: every program is rejected with a clear, typed message."""

import pytest

from cwm_jax import contract, loader, reference, validator
from cwm_jax.errors import CWMError, CWMValidationError
from tests.hostile_programs import HOSTILE


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_program_is_rejected(case, tmp_path):
    canary = tmp_path / "canary"
    with pytest.raises(CWMError) as info:
        loader.load_cwm(case.render(str(canary)), "CartPole")
    error = info.value
    assert error.kind == case.kind, str(error)
    assert case.mentions.lower() in str(error).lower(), str(error)
    assert not canary.exists(), "the program's payload ran"


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
    ],
)
def test_idiomatic_jax_is_accepted(snippet):
    source = ("import math\nimport jax\nimport jax.numpy as jnp\nfrom jax import lax\n\nLIMIT = 2 * math.pi\n\n"
              "def step(state, action):\n" + snippet + "    return state, jnp.float32(1.0), jnp.bool_(False)\n")
    step = loader.load_cwm(source, "CartPole")
    assert callable(step)


def test_reference_passes_validator():
    validator.validate(reference.source("CartPole"))
