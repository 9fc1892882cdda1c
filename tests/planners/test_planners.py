"""Tests of the planners package: terminals, masks, CEM, oracle parity, evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from cwm_jax import envs
from cwm_jax.validate.loader import load_reference

# --------------------------------------------------------------------------- toy models

BIG = 1000.0


def terminating_model(state, action):
    """Action 0 terminates at once (reward 1); action 1 goes on (reward 0.5).

    After termination this (bad) model 'revives' and pays BIG rewards with done
    False: the planner's done latch must hide all of it.
    """
    depth, dead = state[0], state[1]
    next_state = jnp.stack([depth + 1.0, jnp.where(action == 0, 1.0, dead)])
    reward = jnp.where(dead > 0, BIG, jnp.where(action == 0, 1.0, 0.5))
    done = (dead == 0) & (action == 0)
    return next_state, reward, done


def big_value(key, state):
    """A value function that (wrongly) rates every state BIG."""
    del key, state
    return jnp.float32(BIG)


@pytest.fixture(scope="module", params=["muzero", "gumbel"])
def terminal_search(request):
    return request.param, jax.jit(
        planners.make_mcts_search(
            terminating_model, num_actions=2, num_simulations=24, policy=request.param, rollout_depth=5
        )
    )


def test_no_reward_below_a_terminal_node(terminal_search):
    policy, search = terminal_search
    states = jnp.zeros((3, 2), jnp.float32)
    out = search(jax.random.key(0), states)
    tree = out.search_tree
    q = np.asarray(tree.summary().qvalues)
    visits = np.asarray(tree.summary().visit_counts)
    assert (visits[:, 0] > 0).all(), (policy, visits)
    # Q(root, 0) is exactly the terminating reward: nothing after done counts.
    np.testing.assert_allclose(q[:, 0], 1.0, rtol=0, atol=1e-6)
    # Nothing anywhere in the tree sees BIG: values, rewards and Qs stay small.
    assert np.abs(np.asarray(tree.node_values)).max() < BIG / 2
    assert np.abs(np.asarray(tree.children_rewards)).max() < BIG / 2


def test_terminal_nodes_are_absorbing_with_a_value_fn():
    search = jax.jit(
        planners.make_mcts_search(
            terminating_model, num_actions=2, num_simulations=16, policy="muzero", value_fn=big_value
        )
    )
    out = search(jax.random.key(1), jnp.zeros((2, 2), jnp.float32))
    tree = out.search_tree
    q = np.asarray(tree.summary().qvalues)
    np.testing.assert_allclose(q[:, 0], 1.0, atol=1e-6)  # terminal child: value 0, discount 0
    # The terminal child of the root: node value 0 (mctx issue #54).
    child = np.asarray(tree.children_index)[:, 0, 0]
    values = np.asarray(tree.node_values)[np.arange(2), child]
    np.testing.assert_allclose(values, 0.0, atol=1e-6)


def test_rollouts_stop_at_done():
    # A rollout that terminates on its 3rd step and is paid BIG afterwards.
    def model(state, action):
        del action
        t = state[0] + 1.0
        return jnp.stack([t]), jnp.where(t > 3, BIG, 1.0), t >= 3

    for early_exit in (True, False):
        ret = jax.jit(
            lambda s: planners.rollout_return(
                model, s, jnp.zeros((10,), jnp.int32), discount=0.5, early_exit=early_exit
            )
        )(jnp.zeros((1,), jnp.float32))
        np.testing.assert_allclose(ret, 1.0 + 0.5 + 0.25, rtol=1e-6)
    value = planners.make_rollout_value(
        model, planners.uniform_discrete_actions(2), depth=10, discount=0.5, num_rollouts=4
    )
    np.testing.assert_allclose(jax.jit(value)(jax.random.key(0), jnp.zeros((1,))), 1.75, rtol=1e-6)


@pytest.mark.parametrize("policy", ["muzero", "gumbel"])
def test_action_mask_applies_inside_the_tree(policy):
    def model(state, action):
        return state + jnp.float32(action), jnp.float32(action == 2) * 10.0, jnp.bool_(False)

    search = jax.jit(
        planners.make_mcts_search(
            model,
            num_actions=3,
            num_simulations=20,
            policy=policy,
            rollout_depth=3,
            action_mask_fn=lambda s: jnp.array([True, True, False]),
        )
    )
    out = search(jax.random.key(0), jnp.zeros((2, 1), jnp.float32))
    # Action 2 pays 10 but is illegal: never visited at the root or below.
    assert (np.asarray(out.search_tree.children_visits)[..., 2] == 0).all()
    assert (np.asarray(out.action) != 2).all()


def test_prior_fn_steers_the_search():
    def model(state, action):
        del action
        return state, jnp.float32(0.0), jnp.bool_(False)

    search = jax.jit(
        planners.make_mcts_search(
            model,
            num_actions=3,
            num_simulations=12,
            rollout_depth=0,
            prior_fn=lambda s: jnp.array([0.0, 5.0, 0.0]),
        )
    )
    out = search(jax.random.key(0), jnp.zeros((1, 1), jnp.float32))
    assert int(out.action[0]) == 1


# --------------------------------------------------------------------------- CEM


def test_cem_finds_the_best_action_and_stays_in_the_box():
    target = 0.7

    def model(state, action):
        return state, -jnp.sum((action - target) ** 2), jnp.bool_(False)

    plan = jax.jit(
        jax.vmap(
            planners.make_cem_planner(
                model, action_dim=2, action_low=-1.0, action_high=1.0, horizon=2, iterations=8,
                num_samples=256, num_elites=16,
            )
        )
    )
    actions = plan(jax.random.split(jax.random.key(0), 4), jnp.zeros((4, 1), jnp.float32))
    assert actions.shape == (4, 2)
    np.testing.assert_allclose(actions, target, atol=0.15)

    def edge_model(state, action):
        return state, jnp.sum(action), jnp.bool_(False)

    search = planners.make_cem_search(
        edge_model, action_dim=1, action_low=-2.0, action_high=2.0, horizon=4, iterations=3,
        num_samples=32, num_elites=4,
    )
    out = jax.jit(search)(jax.random.key(1), jnp.zeros((1,)))
    assert out.actions.shape == (4, 1)
    assert float(out.actions.max()) <= 2.0 and float(out.actions.min()) >= -2.0
    np.testing.assert_allclose(out.value, out.actions.sum(), rtol=1e-5)


# --------------------------------------------------------------------------- oracle parity


@pytest.fixture(scope="module")
def cartpole():
    return envs.env_spec("gymnax/CartPole")


@pytest.fixture(scope="module")
def cartpole_planners(cartpole):
    """jit(vmap(plan)) with the reference CWM and with the oracle, same settings."""
    kwargs = dict(num_actions=2, num_simulations=8, rollout_depth=10)
    plan_cwm = jax.jit(jax.vmap(planners.make_mcts_planner(load_reference(cartpole), **kwargs)))
    plan_oracle = jax.jit(jax.vmap(planners.make_mcts_planner(cartpole.oracle_step, **kwargs)))
    return plan_cwm, plan_oracle


def test_same_actions_with_oracle_and_reference_cwm(cartpole_planners):
    plan_cwm, plan_oracle = cartpole_planners
    states = jax.random.uniform(jax.random.key(2), (32, 4), minval=-0.15, maxval=0.15)
    keys = jax.random.split(jax.random.key(3), 32)
    np.testing.assert_array_equal(plan_cwm(keys, states), plan_oracle(keys, states))


def play(cartpole, plan, steps: int):
    """Actions [steps, 32] and states [steps, 32, 4] of 32 real-env episodes, with keys fixed per step.

    Episodes are not stopped at termination (gymnax's `step_env` goes on), so
    every step of every episode is compared.
    """
    env, params = cartpole.make_gymnax()
    reset = jax.jit(jax.vmap(lambda k: env.reset_env(k, params)))
    step = jax.jit(jax.vmap(lambda k, s, a: env.step_env(k, s, a, params)[:2]))
    obs, env_state = reset(jax.random.split(jax.random.key(4), 32))
    actions, states = [], []
    for t in range(steps):
        state = jax.vmap(cartpole.flatten_obs)(obs)
        action = plan(jax.random.split(jax.random.key(100 + t), 32), state)
        obs, env_state = step(jax.random.split(jax.random.key(200 + t), 32), env_state, action)
        actions.append(np.asarray(action))
        states.append(np.asarray(state))
    return np.stack(actions), np.stack(states)


def test_oracle_and_reference_cwm_play_the_same_episodes(cartpole, cartpole_planners):
    # Whole trajectories, not single states: the states the episodes reach
    # (far from the start region) and every decision on the way match.
    plan_cwm, plan_oracle = cartpole_planners
    actions, states = play(cartpole, plan_cwm, steps=60)
    oracle_actions, oracle_states = play(cartpole, plan_oracle, steps=60)
    assert np.abs(oracle_states[:, :, 0]).max() > 0.5  # some carts travel well beyond the start region
    np.testing.assert_array_equal(actions, oracle_actions)
    np.testing.assert_array_equal(states, oracle_states)


def test_same_cem_actions_with_oracle_and_reference_cwm():
    spec = envs.env_spec("gymnax/Pendulum")
    kwargs = dict(
        action_dim=spec.action_dim, action_low=spec.action_low, action_high=spec.action_high,
        horizon=5, iterations=3, num_samples=32, num_elites=4,
    )
    plan_cwm = jax.jit(jax.vmap(planners.make_cem_planner(load_reference(spec), **kwargs)))
    plan_oracle = jax.jit(jax.vmap(planners.make_cem_planner(spec.oracle_step, **kwargs)))
    keys = jax.random.split(jax.random.key(0), 4)
    env, params = spec.make_gymnax()
    states = jax.vmap(lambda k: spec.flatten_obs(env.reset_env(k, params)[0]))(keys)
    np.testing.assert_allclose(plan_cwm(keys, states), plan_oracle(keys, states), atol=1e-4)


# --------------------------------------------------------------------------- evaluation


@pytest.fixture(scope="module")
def cartpole_eval(cartpole):
    env, params = cartpole.make_gymnax()
    plan = planners.make_mcts_planner(cartpole.oracle_step, num_actions=2, num_simulations=4, rollout_depth=5)
    return planners.make_evaluate(env, params, plan, obs_fn=cartpole.flatten_obs, max_steps=60)


def test_vmapped_evaluation_is_deterministic_and_batch_independent(cartpole_eval):
    keys = planners.seed_keys(4)
    first = cartpole_eval(keys)
    second = cartpole_eval(keys)
    np.testing.assert_array_equal(first.episode_return, second.episode_return)
    np.testing.assert_array_equal(first.length, second.length)
    assert first.episode_return.shape == (4,)
    lengths = np.asarray(first.length)
    # Some seeds terminate early, others run into the time limit.
    assert (lengths <= 60).all() and (lengths == 60).any() and (lengths < 60).any(), lengths
    # A seed's episode does not depend on where it sits in the batch or on
    # when its neighbours' episodes end (same shape: no recompilation).
    order = jnp.array([2, 0, 3, 1])
    shuffled = cartpole_eval(keys[order])
    np.testing.assert_array_equal(shuffled.episode_return, first.episode_return[order])
    np.testing.assert_array_equal(shuffled.length, first.length[order])


def test_random_baseline_ends_episodes_and_counts_rewards(cartpole):
    env, params = cartpole.make_gymnax()
    result = planners.evaluate(env, params, planners.random_policy(cartpole.random_action), 8,
                               obs_fn=cartpole.flatten_obs)
    # CartPole pays 1 per step, including the terminating one.
    np.testing.assert_array_equal(result.episode_return, result.length.astype(np.float32))
    assert (np.asarray(result.length) < 500).all() and (np.asarray(result.length) > 0).all()


def test_open_loop_cem_agent_runs_in_the_evaluation():
    spec = envs.env_spec("gymnax/Pendulum")
    env, params = spec.make_gymnax()
    search = planners.make_cem_search(
        spec.oracle_step, action_dim=1, action_low=spec.action_low, action_high=spec.action_high,
        horizon=6, iterations=2, num_samples=16, num_elites=4,
    )
    agent = planners.open_loop_agent(search, replan_every=6)
    run = planners.make_evaluate(env, params, agent, obs_fn=spec.flatten_obs, max_steps=15)
    out = run(planners.seed_keys(2))
    np.testing.assert_array_equal(out.length, [15, 15])  # truncated mid-plan, not at a plan boundary
    assert np.isfinite(np.asarray(out.episode_return)).all()


def test_normalized_return():
    assert planners.normalized_return(300.0, 20.0, 500.0) == pytest.approx(280 / 480)
    assert planners.normalized_return(-200.0, -200.0, -200.0) is None  # oracle == random: N/A
    assert planners.normalized_return(1.0, 5.0, 4.0) is None


def test_planner_validates_its_settings():
    with pytest.raises(ValueError, match="policy"):
        planners.make_mcts_planner(terminating_model, num_actions=2, policy="alphazero")
    with pytest.raises(ValueError, match="num_elites"):
        planners.make_cem_planner(
            terminating_model, action_dim=1, action_low=-1, action_high=1, num_samples=4, num_elites=8
        )
