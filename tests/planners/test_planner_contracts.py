"""Planner contracts with hand-computed values: the MCTS recurrent function and
open-loop CEM's replanning cadence."""

from __future__ import annotations

import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from planners import mcts

# --------------------------------------------------------------------------- MCTS recurrent_fn


def counter_model(state, action):
    """next = state + action + 1; reward = 10 * state[0] + action; done when action == 2."""
    return state + jnp.float32(action) + 1.0, 10.0 * state[0] + jnp.float32(action), action == 2


def hundred_times_value(key, state):
    del key
    return 100.0 * state[0]


def prior(state):
    return jnp.stack([state[0], 0.0, -state[0]])


def mask(state):
    return jnp.stack([True, state[0] < 3.0, True])


@pytest.fixture(scope="module")
def recurrent_outputs():
    """The recurrent function on four parents; returns (outputs, embeddings) without and with tie noise."""
    parents = mcts.Embedding(
        state=jnp.array([[0.0], [1.0], [5.0], [jnp.nan]], jnp.float32),
        done=jnp.array([False, False, True, False]),
    )
    actions = jnp.array([0, 2, 1, 0], jnp.int32)
    results = []
    for noise in (0.0, 1e-3):
        fn = mcts.make_recurrent_fn(
            counter_model, num_actions=3, discount=0.9, value_fn=hundred_times_value,
            prior_fn=prior, action_mask_fn=mask, tie_break_noise=noise,
        )
        results.append(jax.jit(fn)(None, jax.random.key(0), actions, parents))
    return results


def test_recurrent_fn_arithmetic_and_absorbing_terminals(recurrent_outputs):
    (out, child), _ = recurrent_outputs
    # Row 0: state 0, action 0 -> next 1, reward 0, not done: discount 0.9, value 100 * 1.
    # Row 1: state 1, action 2 -> next 4, reward 12, done: discount 0, value 0.
    # Row 2: parent already done: state frozen at 5, reward 0 (not 51), discount 0, value 0.
    # Row 3: NaN state -> NaN reward and value, which count as 0.
    np.testing.assert_allclose(child.state[:3, 0], [1.0, 4.0, 5.0])
    np.testing.assert_array_equal(child.done, [False, True, True, False])
    np.testing.assert_array_equal(out.reward, [0.0, 12.0, 0.0, 0.0])
    np.testing.assert_allclose(out.discount, [0.9, 0.0, 0.0, 0.9])
    np.testing.assert_array_equal(out.value, [100.0, 0.0, 0.0, 0.0])
    # Prior logits of the child: prior(next) = [s, 0, -s]; action 1 masked (-1e9) where s >= 3.
    np.testing.assert_array_equal(out.prior_logits[:3], [[1.0, 0.0, -1.0], [4.0, -1e9, -4.0], [5.0, -1e9, -5.0]])


def test_tie_break_noise_is_small_and_only_on_request(recurrent_outputs):
    (plain, _), (noisy, _) = recurrent_outputs
    difference = np.abs(np.asarray(noisy.prior_logits[:3]) - np.asarray(plain.prior_logits[:3]))
    assert (difference > 0).any() and difference.max() < 0.02  # Gumbel(0, 1) * 1e-3
    np.testing.assert_array_equal(noisy.reward, plain.reward)
    np.testing.assert_array_equal(noisy.value, plain.value)


# --------------------------------------------------------------------------- open-loop CEM cadence


class _ClockState(NamedTuple):
    time: jax.Array


class _ClockParams(NamedTuple):
    max_steps_in_episode: int = 10


class CadenceEnv:
    """A gymnax-style env whose observation is the step count t. It pays 1 when
    the action equals 100 * (t at the last search) + (steps since that search),
    i.e. when the agent searched exactly every PERIOD steps and then executed
    the plan's actions in order."""

    PERIOD = 4

    def reset_env(self, key, params):
        del key, params
        return jnp.zeros((1,), jnp.float32), _ClockState(time=jnp.int32(0))

    def step_env(self, key, state, action, params):
        del key, params
        t = state.time
        searched_at = (t // self.PERIOD) * self.PERIOD
        expected = 100.0 * searched_at + (t - searched_at)
        reward = jnp.where(action[0] == expected, 1.0, 0.0)
        next_state = _ClockState(time=t + 1)
        return next_state.time.astype(jnp.float32)[None], next_state, reward, jnp.bool_(False), {}


def plan_from_the_clock(key, state):
    """A stand-in for a CEM search: the plan [100 * t + i for i in 0..5] from the observed t."""
    del key
    return planners.CEMOutput(
        actions=(100.0 * state[0] + jnp.arange(6, dtype=jnp.float32))[:, None],
        value=jnp.float32(0.0), mean=jnp.zeros((6, 1)), std=jnp.zeros((6, 1)),
    )


def test_open_loop_agent_replans_every_period_and_runs_the_plan_in_order():
    agent = planners.open_loop_agent(plan_from_the_clock, replan_every=CadenceEnv.PERIOD)
    assert agent.period == CadenceEnv.PERIOD
    run = planners.make_evaluate(CadenceEnv(), _ClockParams(), agent)
    result = run(planners.seed_keys(2))
    # 10 steps: searches at t = 0, 4, 8; the last plan is cut after 2 of its 4 actions.
    # Every step executed the expected action, so the return equals the length.
    np.testing.assert_array_equal(result.length, [10, 10])
    np.testing.assert_array_equal(result.episode_return, [10.0, 10.0])


def test_open_loop_agent_rejects_a_period_longer_than_the_plan():
    agent = planners.open_loop_agent(plan_from_the_clock, replan_every=7)
    with pytest.raises(ValueError, match="exceeds the horizon 6"):
        agent.search(jax.random.key(0), jnp.zeros((1,)))
    with pytest.raises(ValueError, match=">= 1"):
        planners.open_loop_agent(plan_from_the_clock, replan_every=0)


# --------------------------------------------------------------------------- defaults


def test_mcts_config_defaults_are_the_papers():
    config = planners.MCTSConfig(num_actions=2)
    paper = {"num_simulations": 25, "policy": "muzero", "rollout_depth": 100, "num_rollouts": 1, "discount": 0.99}
    assert {name: getattr(config, name) for name in paper} == paper
    # Planning with a fixed model: no root exploration noise, act on the most visited action.
    assert config.dirichlet_fraction == 0.0 and config.temperature == 0.0
    cem = planners.CEMConfig(action_dim=1, action_low=-1.0, action_high=1.0)
    assert (cem.horizon, cem.iterations, cem.num_samples, cem.num_elites, cem.discount) == (100, 20, 1000, 100, 1.0)
    # The search and the planner take the same arguments: one config, the same functions.
    assert inspect.signature(mcts.make_mcts_search).parameters.keys() == \
        inspect.signature(mcts.make_mcts_planner).parameters.keys()
