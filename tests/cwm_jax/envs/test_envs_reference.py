"""The registry, the oracle and the reference CWMs of every environment.

The reference CWMs must agree with the oracle (gymnax's own `step_env` on the
state rebuilt from the observation) on states the env actually visits, and
the oracle must agree with gymnax stepping its true hidden state. The full
check (thousands of transitions, full episodes, wider state boxes, policy
returns) is `python experiments/check_envs.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax import envs, reference

ATOL = 1e-5
RTOL = 1e-5
N_ENVS = 4  # parallel auto-resetting envs per policy
N_STEPS = 160  # long enough for the heuristics to reach the goals: 2 x 4 x 160 transitions

SPEC_IDS = [spec.name for spec in envs.SPECS]
NEVER_DONE = {"Pendulum", "Reacher", "Swimmer", "DiscountingChain"}  # these never terminate


def load_reference(spec: envs.EnvSpec):
    """The reference CWM's `step`, from its source text."""
    namespace: dict = {}
    exec(compile(reference.source(spec), f"<reference {spec.reference}>", "exec"), namespace)
    return namespace["step"]


def visited_transitions(spec: envs.EnvSpec, policy, key):
    """Transitions of the real env from real reset states, auto-resetting at done.

    Every row is a real pre-step observation, the action taken and gymnax's
    own (next obs, reward, done) from the true hidden state.
    """
    env, params = spec.make_gymnax()

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset_env(k_reset, params)

        def body(carry, key):
            obs, state = carry
            k_pol, k_env, k_reset = jax.random.split(key, 3)
            flat = spec.flatten_obs(obs)
            action = policy(k_pol, flat)
            gym_action = spec.to_gymnax_action(action) if spec.to_gymnax_action else action
            nobs, nstate, reward, done, _ = env.step_env(k_env, state, gym_action, params)
            done = jnp.asarray(done, jnp.bool_).reshape(())
            robs, rstate = env.reset_env(k_reset, params)
            pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)
            row = (flat, action, spec.flatten_obs(nobs),
                   jnp.asarray(reward, jnp.float32).reshape(()), done)
            return (pick(robs, nobs), pick(rstate, nstate)), row

        return jax.lax.scan(body, (obs, state), jax.random.split(k_steps, N_STEPS))[1]

    rows = jax.vmap(run)(jax.random.split(key, N_ENVS))
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), rows)


def close(pred, true):
    return jnp.abs(pred - true) <= ATOL + RTOL * jnp.abs(true)


@pytest.mark.parametrize("name", SPEC_IDS)
def test_reference_matches_oracle_on_visited_states(name):
    spec = envs.make(name)
    step = load_reference(spec)
    k_rand, k_heur = jax.random.split(jax.random.key(0))

    @jax.jit
    def compare(k_rand, k_heur):
        a = visited_transitions(spec, lambda k, o: spec.random_action(k), k_rand)
        b = visited_transitions(spec, spec.heuristic_policy, k_heur)
        obs, action, t_next, t_reward, t_done = jax.tree.map(
            lambda x, y: jnp.concatenate([x, y]), a, b)
        o_next, o_reward, o_done = jax.vmap(spec.oracle_step)(obs, action)
        r_next, r_reward, r_done = jax.vmap(step)(obs, action)
        ref_ok = (jnp.all(close(r_next, o_next), axis=1) & close(r_reward, o_reward)
                  & (r_done == o_done))
        oracle_ok = (jnp.all(close(o_next, t_next), axis=1) & close(o_reward, t_reward)
                     & (o_done == t_done))
        return ref_ok, oracle_ok, obs, action, t_done

    ref_ok, oracle_ok, obs, action, done = compare(k_rand, k_heur)
    ref_ok, oracle_ok = np.asarray(ref_ok), np.asarray(oracle_ok)
    assert ref_ok.shape == (2 * N_ENVS * N_STEPS,)
    bad = np.nonzero(~ref_ok)[0]
    assert bad.size == 0, (
        f"{name}: reference differs from the oracle on {bad.size} transitions, first at "
        f"obs={np.asarray(obs[bad[0]]).tolist()} action={np.asarray(action[bad[0]]).tolist()}"
    )
    assert oracle_ok.all(), f"{name}: oracle differs from gymnax on {(~oracle_ok).sum()} transitions"
    if name not in NEVER_DONE:  # terminal transitions are covered
        assert np.asarray(done).sum() > 0, f"{name}: no terminal transition visited"


@pytest.mark.parametrize("name", SPEC_IDS)
def test_oracle_and_reference_follow_the_contract(name):
    spec = envs.make(name)
    state, action = spec.state_struct(), spec.action_struct()
    assert state.shape == (spec.obs_dim,) and state.dtype == jnp.float32
    if spec.discrete:
        assert action.shape == () and action.dtype == jnp.int32
        assert spec.num_actions >= 2 and spec.action_dim is None
    else:
        assert action.shape == (spec.action_dim,) and action.dtype == jnp.float32
        assert spec.action_low < spec.action_high
    for fn in (spec.oracle_step, load_reference(spec)):
        next_state, reward, done = jax.eval_shape(fn, state, action)
        assert next_state.shape == (spec.obs_dim,) and next_state.dtype == jnp.float32
        assert reward.shape == () and reward.dtype == jnp.float32
        assert done.shape == () and done.dtype == jnp.bool_
    # Policies return a contract action, inside the bounds.
    env, params = spec.make_gymnax()
    obs = spec.flatten_obs(env.reset_env(jax.random.key(1), params)[0])
    assert obs.shape == (spec.obs_dim,)
    keys = jax.random.split(jax.random.key(2), 64)
    for policy in (spec.heuristic_policy, lambda k, o: spec.random_action(k)):
        acts = jax.vmap(policy, in_axes=(0, None))(keys, obs)
        assert acts.shape == (64,) + action.shape and acts.dtype == action.dtype
        if spec.discrete:
            assert int(acts.min()) >= 0 and int(acts.max()) < spec.num_actions
        else:
            assert float(acts.min()) >= spec.action_low and float(acts.max()) <= spec.action_high


def test_registry_has_the_required_envs():
    assert set(SPEC_IDS) >= {"CartPole", "Acrobot", "MountainCar", "MountainCarContinuous",
                             "Pendulum", "Catch"}
    assert envs.env_spec("Catch").obs_shape == (10, 5) and envs.env_spec("Catch").obs_dim == 50


def test_every_id_resolves_and_no_id_is_shared():
    owner: dict[str, str] = {}
    for spec in envs.SPECS:
        for env_id in spec.ids:
            assert envs.env_spec(env_id) is spec
            assert envs.env_spec(env_id.upper()) is spec
            assert envs.env_spec(f"  {env_id} ") is spec
            assert owner.setdefault(env_id.lower(), spec.name) == spec.name, env_id
        assert envs.env_spec(spec) is spec
        assert spec.id in envs.names()
    assert envs.env_spec("gymnax/MountainCar").name == "MountainCar"
    assert envs.env_spec("gymnax/MountainCarContinuous").name == "MountainCarContinuous"
    assert envs.env_spec("MountainCar-v0").name == "MountainCar"
    assert envs.env_spec("MountainCarContinuous-v0").name == "MountainCarContinuous"
    assert envs.env_spec("Catch-bsuite").name == "Catch"
    assert envs.env_spec("gymnax/Pendulum-v1").name == "Pendulum"


def test_canonical_id_is_the_registry_key_and_make_is_an_alias():
    assert envs.make is envs.env_spec
    assert envs.env_spec("CartPole-v1").id == "gymnax/CartPole"
    assert envs.env_spec("cartpole-UNKNOWN").id == "gymnax/CartPole-unknown"
    assert envs.names() == [spec.id for spec in envs.ALL_SPECS]
    for spec in envs.ALL_SPECS:
        assert spec.ids[0] == spec.id and envs.env_spec(spec.id) is spec


@pytest.mark.parametrize("bad", ["gymnax/MountainCarContinous", "Breakout-MinAtar", "", "catch-v0"])
def test_unknown_id_lists_known_ids(bad):
    with pytest.raises(envs.UnknownEnvError) as info:
        envs.env_spec(bad)
    message = str(info.value)
    assert repr(bad) in message
    for known in envs.names():
        assert known in message
