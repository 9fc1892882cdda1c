"""The planners' library API: evaluate's compile cache, gymnax wrappers, input checks, configs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.wrappers import FlattenObservationWrapper, GymnaxToGymWrapper, LegacyStepAPIWrapper, LogWrapper
from gymnax.wrappers.purerl import GymnaxWrapper

import planners
from cwm_jax import envs


@pytest.fixture(scope="module")
def cartpole():
    spec = envs.env_spec("gymnax/CartPole")
    return spec, *spec.make_gymnax()


# --------------------------------------------------------------------------- evaluate's compile cache

TRACES = []


@pytest.fixture(scope="module")
def random_play(cartpole):
    """A random policy that counts its traces, evaluated twice on CartPole (3 seeds)."""
    spec, env, params = cartpole

    def sample(key):
        TRACES.append(1)  # runs once per trace, not per step
        return spec.random_action(key)

    runs = [planners.evaluate(env, params, planners.random_policy(sample), 3, obs_fn=spec.flatten_obs)
            for _ in range(2)]
    return planners.random_policy(sample), runs


def test_evaluate_compiles_once_for_the_same_env_and_policy(random_play):
    _, (first, second) = random_play
    assert len(TRACES) == 1, "the second evaluate call traced (and compiled) again"
    np.testing.assert_array_equal(first.episode_return, second.episode_return)
    np.testing.assert_array_equal(first.episode_return, first.length.astype(np.float32))


# --------------------------------------------------------------------------- gymnax wrappers


class TenfoldReward(GymnaxWrapper):
    """A user's wrapper: it changes `step`, which gymnax wrappers forward as `step_env` untouched."""

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, 10.0 * reward, terminated, truncated, info


def test_wrappers_are_applied_not_bypassed(cartpole, random_play):
    spec, env, params = cartpole
    policy, (plain, _) = random_play
    # LegacyStepAPIWrapper's step returns 5 values, LogWrapper's and ours 6.
    wrapped = LegacyStepAPIWrapper(LogWrapper(TenfoldReward(env)))
    scaled = planners.evaluate(wrapped, params, policy, 3, obs_fn=spec.flatten_obs)
    np.testing.assert_array_equal(scaled.length, plain.length)  # episodes still end at termination
    np.testing.assert_allclose(scaled.episode_return, 10.0 * np.asarray(plain.episode_return))


def test_flatten_observation_wrapper_reaches_the_policy():
    spec = envs.env_spec("gymnax/Catch")
    env, params = spec.make_gymnax()
    assert env.reset_env(jax.random.key(0), params)[0].ndim == 2

    def flat_only(key, obs):
        assert obs.shape == (spec.obs_dim,), obs.shape
        return spec.random_action(key)

    result = planners.evaluate(FlattenObservationWrapper(env), params, flat_only, 2)
    assert (np.asarray(result.length) > 0).all()


def test_host_side_gym_adapter_is_rejected(cartpole):
    _, env, params = cartpole
    with pytest.raises(ValueError, match="cannot run inside jax.jit; pass the gymnax environment"):
        planners.make_episode_fn(GymnaxToGymWrapper(env), params, planners.random_policy(lambda k: 0))


# --------------------------------------------------------------------------- input checks


def drift_model(state, action):
    """next = state + action; reward = state[0]; done when state[0] > 1 (a CWM-like model: no batch check)."""
    return state + jnp.float32(action), state[..., 0], state[..., 0] > 1


def test_unbatched_plan_on_a_batch_says_to_vmap():
    mcts = planners.make_mcts_planner(drift_model, num_actions=2, num_simulations=2, rollout_depth=2)
    cem = planners.make_cem_planner(lambda s, a: drift_model(s, a[0]), action_dim=1,
                                    action_low=-1.0, action_high=1.0, horizon=2, iterations=1,
                                    num_samples=4, num_elites=2)
    batch = jnp.zeros((5, 3), jnp.float32)
    for plan in (mcts, cem):
        with pytest.raises(ValueError, match=r"takes ONE state.*jax\.vmap\(plan\)"):
            jax.eval_shape(plan, jax.random.key(0), batch)
    assert jax.eval_shape(jax.vmap(mcts), jax.random.split(jax.random.key(0), 5), batch).shape == (5,)


def test_mcts_refuses_an_action_count_the_model_does_not_have(cartpole):
    spec, _, _ = cartpole
    from cwm_jax.validate.loader import load_reference

    for model in (spec.oracle_step, load_reference(spec, check_finite=False)):
        with pytest.raises(ValueError, match="num_actions=3, but the model has 2 actions"):
            planners.make_mcts_planner(model, num_actions=3)
        planners.make_mcts_planner(model, num_actions=2)


# --------------------------------------------------------------------------- configs


def test_configs_validate_and_keywords_build_or_replace_them():
    config = planners.MCTSConfig(num_actions=2, rollout_depth=20)
    assert planners.MCTSConfig(num_actions=2).replace(rollout_depth=20) == config
    for bad in ({"discount": 1.5}, {"num_simulations": 0}, {"rollout_depth": -1}, {"policy": "alphazero"}):
        with pytest.raises(ValueError, match="MCTSConfig: " + next(iter(bad))):
            planners.MCTSConfig(num_actions=2, **bad)
        with pytest.raises(ValueError, match="MCTSConfig: " + next(iter(bad))):
            planners.make_mcts_planner(drift_model, config, **bad)  # overrides replace config fields
        with pytest.raises(ValueError, match="MCTSConfig: " + next(iter(bad))):
            planners.make_mcts_search(drift_model, num_actions=2, **bad)  # or build the config
    with pytest.raises(TypeError, match="unknown setting.*num_simulation\\b"):
        planners.make_mcts_planner(drift_model, num_actions=2, num_simulation=4)
    with pytest.raises(ValueError, match="CEMConfig: action_low must not exceed"):
        planners.CEMConfig(action_dim=1, action_low=1.0, action_high=-1.0)
    with pytest.raises(ValueError, match="CEMConfig: discount"):
        planners.make_cem_planner(drift_model, action_dim=1, action_low=-1.0, action_high=1.0, discount=0.0 - 1)


def test_library_and_command_share_the_planner_defaults():
    """One set of defaults (issue 25): `make_planner(spec, step)` plans as `cwm-jax plan` does."""
    from cwm_jax.commands import main as cli
    from cwm_jax.commands.planner_options import config_from_args
    from cwm_jax.planning import PLANNERS, make_planner, planner_config, planner_of

    for env in ("gymnax/CartPole", "gymnax/Pendulum"):
        spec = envs.env_spec(env)
        args = cli.parse_args(["plan", "--env", env])
        config = planner_config(spec)
        assert config_from_args(spec, args) == config
        entry = planner_of(config)
        assert {field: getattr(config, field) for field in entry.defaults} == dict(entry.defaults)
    assert PLANNERS["mcts"].defaults["num_rollouts"] == 32  # the tuned leaf value, not the paper's single rollout
    with pytest.raises(ValueError, match="num_simulations: not a field of CEMConfig"):
        make_planner(envs.env_spec("gymnax/Pendulum"), lambda s, a: (s, 0.0, False), num_simulations=4)

