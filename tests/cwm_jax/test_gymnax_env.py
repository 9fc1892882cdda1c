"""A CWM as a gymnax Environment: it must reproduce the real env with the reference CWM."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax import envs
from cwm_jax.gymnax_env import CWMEnv, CWMEnvState
from cwm_jax.validate.loader import load_reference

STEPS = 200


def random_rollout(env, params, spec, key, steps=STEPS):
    """Random actions through `env.step` (auto-reset); returns flat obs, rewards, flags."""
    reset_key, key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)

    def body(carry, key):
        obs, state = carry
        action_key, step_key = jax.random.split(key)
        action = env.action_space(params).sample(action_key)
        obs, state, reward, terminated, truncated, _ = env.step(step_key, state, action, params)
        return (obs, state), (spec.flatten_obs(obs), jnp.asarray(reward, jnp.float32), terminated, truncated)

    _, out = jax.lax.scan(body, (obs, state), jax.random.split(key, steps))
    return out


@pytest.mark.parametrize("env_id", [spec.id for spec in envs.SPECS])  # -unknown variants differ
def test_reference_cwm_reproduces_the_real_trajectory(env_id):
    spec = envs.env_spec(env_id)
    cwm_env = CWMEnv(spec, load_reference(spec))
    real_env, real_params = spec.make_gymnax()
    key = jax.random.key(0)
    got = jax.jit(lambda k: random_rollout(cwm_env, cwm_env.default_params, spec, k))(key)
    want = jax.jit(lambda k: random_rollout(real_env, real_params, spec, k))(key)
    for name, g, w in zip(("obs", "reward", "terminated", "truncated"), got, want):
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), rtol=1e-4, atol=1e-4,
                                   err_msg=f"{env_id}: {name}")


@pytest.fixture(scope="module")
def cartpole_env():
    spec = envs.env_spec("gymnax/CartPole")
    return spec, CWMEnv(spec, load_reference(spec))


def test_gymnax_api(cartpole_env):
    spec, env = cartpole_env
    params = env.default_params
    assert env.name == "CWM-CartPole-v1"
    assert env.num_actions == 2
    assert env.action_space(params).n == 2
    assert env.observation_space(params).shape == (spec.obs_dim,)
    obs, state = env.reset_env(jax.random.key(0), params)
    assert isinstance(state, CWMEnvState) and obs.shape == (4,) and obs.dtype == jnp.float32
    obs2, state2, reward, terminated, info = env.step_env(jax.random.key(1), state, 1, params)
    assert int(state2.time) == 1 and float(reward) == 1.0 and not bool(terminated)
    assert "discount" in info


def test_time_limit_and_auto_reset(cartpole_env):
    spec, env = cartpole_env
    params = env.default_params.replace(max_steps_in_episode=5)
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.key(0), params)
    for t in range(5):
        obs, state, reward, terminated, truncated, info = step(jax.random.key(t + 1), state, t % 2, params)
    assert bool(truncated) and not bool(terminated)
    assert int(state.time) == 0  # auto-reset after the time limit
    # Terminate by pushing one way: the reset obs replaces the terminal one.
    obs, state = env.reset(jax.random.key(0), env.default_params)
    for t in range(100):
        obs, state, reward, terminated, truncated, info = step(jax.random.key(t), state, 1, env.default_params)
        if bool(terminated):
            break
    assert bool(terminated)
    assert int(state.time) == 0
    assert np.abs(np.asarray(obs)).max() <= 0.05  # a fresh start state
    assert np.abs(np.asarray(info["final_observation"])).max() > 0.2


def test_cwm_env_accepts_an_environment_id():
    env = CWMEnv("gymnax/CartPole", lambda state, action: (state, 1.0, False))
    assert env.spec is envs.env_spec("gymnax/CartPole")
