"""The chance contract: validator and loader know `step` and the three chance functions (docs/chance.md)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cwm_jax import envs, reference
from cwm_jax.errors import CWMContractError, CWMRuntimeError, CWMValidationError
from cwm_jax.validate import chance, loader, validator
from planners.stochastic_mcts import make_sampled_step

GRID = "gymnax/SlipperyGrid"

HEADER = "import jax.numpy as jnp\n\n"
AFTER = "def afterstate(state, action):\n    return jnp.append(state, action.astype(jnp.float32))\n\n"
LOGP = "def chance_log_probs(afterstate):\n    return jnp.log(jnp.array([0.5, 0.5], dtype=jnp.float32))\n\n"
OUT = ("def outcome(afterstate, chance):\n"
       "    return afterstate[:2] + chance.astype(jnp.float32), jnp.float32(0.0), afterstate[0] > 9.0\n")


@pytest.fixture(scope="module")
def grid_model():
    return chance.load_chance_cwm(reference.source(GRID), GRID)


def test_reference_loads_with_three_outcomes_that_sum_to_one(grid_model):
    assert grid_model.num_outcomes == 3
    table = chance.outcome_table(grid_model, np.array([2.0, 1.0], np.float32), np.int32(1))
    np.testing.assert_allclose(np.exp(np.asarray(table.log_prob)).sum(), 1.0, rtol=1e-6)
    # right from (2, 1): on as chosen to (2, 2); up to (1, 1); down into the cliff: back to the start with -1
    np.testing.assert_array_equal(np.asarray(table.next_state), [[2, 2], [1, 1], [3, 0]])
    np.testing.assert_array_equal(np.asarray(table.reward), [0, 0, -1])


def test_a_deterministic_cwm_is_the_case_of_one_outcome():
    spec = envs.env_spec(GRID)
    model = chance.load_chance_cwm(reference.deterministic_source(spec), spec, check_finite=False)
    state, action = np.array([2.0, 1.0], np.float32), np.int32(1)
    table = chance.outcome_table(model, state, action)
    assert model.num_outcomes == 1 and table.next_state.shape == (1, spec.obs_dim)
    np.testing.assert_array_equal(np.asarray(table.next_state[0]), [2, 2])  # right, never sliding
    np.testing.assert_array_equal(np.asarray(table.log_prob), [0.0])
    np.testing.assert_array_equal(np.asarray(chance.mode_step(model)(state, action)[0]), [2, 2])


def test_load_cwm_points_a_chance_program_to_the_chance_loader():
    with pytest.raises(CWMContractError, match="load_chance_cwm"):
        loader.load_cwm(reference.source(GRID), GRID)


@pytest.mark.parametrize("source, message", [
    (HEADER + AFTER + LOGP, "`outcome` is missing"),
    (HEADER + AFTER + LOGP + OUT + "def step(state, action):\n    return state, 0.0, False\n", "not both"),
    (HEADER + AFTER.replace("state, action", "state") + LOGP + OUT, "`afterstate` must take exactly two"),
    (HEADER + AFTER + LOGP.replace("(afterstate)", "(afterstate, action)") + OUT,
     "`chance_log_probs` must take exactly one"),
])
def test_the_validator_checks_the_chance_signatures(source, message):
    with pytest.raises(CWMContractError, match=message):
        validator.validate(source)


def test_a_chance_function_is_defined_once():
    with pytest.raises(CWMValidationError, match="`outcome` is defined again"):
        validator.validate(HEADER + AFTER + LOGP + OUT + "\n" + OUT)


def test_randomness_stays_forbidden_in_a_chance_program():
    source = HEADER.replace("\n\n", "\nimport jax\n\n") + AFTER + LOGP + OUT.replace(
        "chance.astype(jnp.float32)", "jax.random.uniform(jax.random.key(0))")
    with pytest.raises(CWMValidationError, match="randomness"):
        validator.validate(source)


@pytest.mark.parametrize("log_probs, error, message", [
    ("jnp.zeros((2, 2))", CWMContractError, "vector"),
    ("jnp.zeros((65,))", CWMContractError, "C must be in"),
    ("jnp.full((2,), -jnp.inf)", CWMRuntimeError, "no possible outcome"),
])
def test_the_loader_checks_the_outcome_probabilities(log_probs, error, message):
    source = HEADER + AFTER + f"def chance_log_probs(afterstate):\n    return {log_probs}\n\n" + OUT
    with pytest.raises(error, match=message):
        chance.load_chance_cwm(source, GRID)


def test_logits_are_normalised_and_sampling_follows_them(grid_model):
    source = HEADER + AFTER + LOGP.replace("jnp.log(jnp.array([0.5, 0.5], dtype=jnp.float32))",
                                           "jnp.array([3.0, 3.0 + jnp.log(3.0)])") + OUT
    model = chance.load_chance_cwm(source, GRID)
    after = model.afterstate(np.zeros(2, np.float32), np.int32(0))
    np.testing.assert_allclose(np.exp(np.asarray(model.chance_log_probs(after))), [0.25, 0.75], rtol=1e-5)
    keys = jax.random.split(jax.random.key(0), 4000)
    state = np.zeros(2, np.float32)
    moved = jax.vmap(lambda k: make_sampled_step(model)(k, state, np.int32(0))[0][0])(keys)
    assert abs(float(moved.mean()) - 0.75) < 0.03
