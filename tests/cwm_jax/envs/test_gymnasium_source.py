"""The gymnasium source: spaces flattened, descriptions cleaned, data recorded through gymnasium, the real env as oracle."""

from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np
import pytest

from cwm_jax import envs, planning, reference
from cwm_jax.data import transitions
from cwm_jax.envs import gymnasium_source

FIXTURE = "gymnasium/tests.cwm_jax.envs.gymnasium_fixture:"


def reference_step(spec: envs.EnvSpec, replace: tuple[str, str] | None = None):
    """The reference CWM's `step` (trusted source), optionally with one text replaced (a mutant)."""
    source = reference.source(spec)
    if replace:
        assert replace[0] in source
        source = source.replace(*replace)
    namespace: dict = {}
    exec(compile(source, "<reference>", "exec"), namespace)
    return jax.jit(jax.vmap(namespace["step"]))


@pytest.fixture
def small_splits(monkeypatch, tmp_path):
    monkeypatch.setenv("CWM_JAX_CACHE", str(tmp_path))
    monkeypatch.setattr(transitions, "RANDOM_EPISODES", 2)
    monkeypatch.setattr(transitions, "HEURISTIC_EPISODES", 2)
    monkeypatch.setattr(transitions, "MAX_EPISODE_STEPS", 60)


def test_dict_observation_flattens_in_key_order_and_a_discrete_action_drops_its_start():
    spec = envs.env_spec(FIXTURE + "Dict-v0")
    assert (spec.id, spec.obs_dim, spec.num_actions, spec.source) == (FIXTURE + "Dict-v0", 3, 3, "gymnasium")
    src = gymnasium_source.source(spec.source_id)[0]
    np.testing.assert_array_equal(src.flatten({"position": np.array([1.5, -2.0]), "count": 4}), [4.0, 1.5, -2.0])
    assert src.to_env_action(np.int32(0)) == -1
    # Its `state` has the observation's size but not its layout: the replay probe finds it, so no oracle.
    assert spec.real_step is None and "does not reproduce" in spec.oracle_note


def test_description_is_the_docstring_cleaned_the_papers_way():
    text = envs.env_spec(FIXTURE + "Dict-v0").description
    assert "The counter moves by the action, see the docs." in text
    for dropped in ("Arguments", "Version History", "https://", "the first"):
        assert dropped not in text


def test_a_space_the_contract_cannot_hold_and_an_unknown_id_are_errors():
    with pytest.raises(envs.UnknownEnvError, match=r"observation space MultiBinary\(3\) is not supported"):
        envs.env_spec(FIXTURE + "MultiBinary-v0")
    result = subprocess.run([sys.executable, "-m", "cwm_jax", "check", "cwm_jax/reference/cartpole.py", "--env",
                             "gymnasium/NoSuchEnv-v0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    assert "NoSuchEnv" in result.stderr


def test_a_stochastic_env_warns_with_the_measured_reason():
    with pytest.warns(gymnasium_source.NondeterminismWarning, match=r"Blackjack-v1 .* repeated \(observation"):
        gymnasium_source.spec.__wrapped__("gymnasium/Blackjack-v1")


@pytest.mark.usefixtures("small_splits")
def test_recorded_grid_data_is_matched_by_its_reference_and_not_by_a_mutant():
    spec = envs.env_spec("gymnasium/CliffWalking-v1")
    data, meta = transitions.collect(spec, "test")
    assert meta["n_episodes"] == 4 and "one-step lookahead" in meta["policy"] and (data.reward == -100).any()
    for step, exact in ((reference_step(spec), True), (reference_step(spec, ("-100.0", "-10.0")), False)):
        next_state, reward, done = (np.asarray(x) for x in step(data.state, data.action))
        match = np.all(next_state == data.next_state) and np.all(reward == data.reward) and np.all(done == data.done)
        assert match == exact


@pytest.mark.usefixtures("small_splits")
def test_truncation_ends_an_episode_but_is_not_done(monkeypatch):
    monkeypatch.setattr(transitions, "MAX_EPISODE_STEPS", 250)  # past Pendulum-v1's time limit of 200
    data, _ = transitions.collect("gymnasium/Pendulum-v1", "train")
    assert np.bincount(data.episode).tolist() == [200] * 4 and not data.done.any()


@pytest.mark.usefixtures("small_splits")
def test_the_oracle_is_the_real_env_set_from_the_observation():
    spec = envs.env_spec("gymnasium/CartPole-v1")
    data = transitions.load_split(spec, "train")
    assert data.done.any()
    next_state, reward, done = jax.jit(jax.vmap(spec.oracle_step))(data.state, data.action)
    np.testing.assert_allclose(next_state, data.next_state, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(done) == data.done) and np.all(np.asarray(reward) == data.reward)
    cwm_next, _, cwm_done = reference_step(spec)(data.state, data.action)
    np.testing.assert_allclose(cwm_next, data.next_state, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(cwm_done) == data.done)


def test_planning_acts_in_the_real_env_and_a_missing_oracle_is_none():
    from cwm_jax import gymnasium_episodes

    spec = envs.env_spec("gymnasium/CliffWalking-v1")
    keys = jax.random.split(jax.random.key(0), 2)
    policy = planning.make_planner(spec, _unbatched(spec),
                                   num_simulations=4, rollout_depth=4, num_rollouts=2)
    returns, lengths, _, _ = gymnasium_episodes.run_episodes(spec, policy, keys, max_steps=6)
    assert lengths.tolist() == [6, 6] and returns.shape == (2,)
    baselines = planning.evaluate_baselines(envs.env_spec(FIXTURE + "Dict-v0"), planning.planner_config(
        envs.env_spec(FIXTURE + "Dict-v0"), num_simulations=2), keys, lambda text: None)
    assert baselines.oracle is None and baselines.random.lengths.tolist() == [4, 4]


def _unbatched(spec: envs.EnvSpec):
    namespace: dict = {}
    exec(compile(reference.source(spec), "<reference>", "exec"), namespace)
    return namespace["step"]
