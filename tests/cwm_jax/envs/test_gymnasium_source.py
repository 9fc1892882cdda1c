"""`gymnasium/<id>`: specs from gymnasium's spaces, transitions recorded through gymnasium, references at 1.0."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cwm_jax import envs, gymnasium_eval, reference
from cwm_jax.commands import main as cli
from cwm_jax.data import cwmb_recording
from cwm_jax.data import transitions as data
from cwm_jax.envs import gymnasium_source as source
from cwm_jax.errors import DeterminismWarning
from cwm_jax.score import scoring

TOY = "gymnasium/tests.cwm_jax.envs.toy_gymnasium:ToyWalk-v0"


def test_the_docstring_is_cleaned_the_papers_way():
    spec = envs.env_spec(TOY)
    assert "moves the walker by the action minus one" in spec.description
    assert "SECRET" not in spec.description and "## Arguments" not in spec.description
    assert "float32 [3]" in spec.description  # the flattening is stated
    text = source.clean_docstring("""
        ## Description
        See [the paper](https://example.org/p) and <a href="#x">1</a> at https://example.org.

        ```python
        >>> gym.make("X")
        ```
        ## Vectorized environment
        gone
        """)
    assert text == "## Description\nSee the paper and 1 at"


def test_module_ids_resolve_and_dict_spaces_flatten_in_order():
    spec = envs.env_spec(TOY)
    assert spec.id == TOY and spec.source == "gymnasium" and envs.env_spec(TOY) is spec
    assert (spec.obs_dim, spec.num_actions, spec.reference, spec.heuristic_policy) == (3, 3, "", None)
    env = source.make_env(spec.name)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(source.flatten_observation(env.observation_space, obs),
                                  [obs["position"][0], obs["position"][1], obs["steps"]])


@pytest.mark.parametrize("name, problem", [
    ("ToyBits-v0", "MultiBinary"), ("ToyLopsided-v0", "bounds that differ"), ("NoSuchEnv-v0", "doesn't exist"),
])
def test_what_the_contract_cannot_hold_is_one_usage_error(name, problem, capsys):
    env_id = f"gymnasium/tests.cwm_jax.envs.toy_gymnasium:{name}"
    with pytest.raises(source.GymnasiumSourceError, match=problem):
        envs.env_spec(env_id)
    status = cli.main(["check", "--env", env_id, "any.py"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error:") and problem in err[0]


def test_truncation_ends_an_episode_without_being_done():
    spec = envs.env_spec(TOY)
    rows = source.record_episodes(spec, [0, 1], source.heuristic_or_random(spec, [0, 1], [False, True]), max_steps=50)
    assert not rows["done"].any()
    assert np.bincount(rows["episode"]).tolist() == [5, 5]  # the TimeLimit of 5 steps
    np.testing.assert_array_equal(rows["state"][1:5], rows["next_state"][0:4])


@pytest.mark.parametrize("env_id, module", [
    ("gymnasium/CartPole-v1", "cartpole"),  # the gymnax twin's reference, exact on gymnasium's float64 physics
    ("gymnasium/CliffWalking-v1", "gymnasium_cliff_walking"),
])
def test_references_are_exact_on_transitions_recorded_through_gymnasium(env_id, module):
    spec = envs.env_spec(env_id)
    assert spec.reference == module
    split, meta = data.collect(spec, "test")
    assert meta["n_episodes"] == cwmb_recording.EPISODES and len(split) > 500  # both are CWMB envs
    result = scoring.score_source(reference.source(spec), spec, splits=("test",),
                                  load_split=lambda s, name: split)
    assert result.valid, result.error
    assert result.summaries["test"]["strict_accuracy"] == 1.0


@pytest.mark.parametrize("env_id, oracle", [
    ("gymnasium/CartPole-v1", "oracle: gymnax/CartPole's dynamics, which reproduce all"),  # the verified twin
    ("gymnasium/CliffWalking-v1", "oracle: the reference CWM of CliffWalking-v1, which reproduces all 192"),
])
def test_plan_acts_in_gymnasium_and_its_oracle_plans_with_the_true_dynamics(env_id, oracle, tmp_path, capsys):
    out = tmp_path / "plan.json"
    status = cli.main(["plan", "--env", env_id, "--model", "reference", "--seeds", "2",
                       "--simulations", "4", "--rollout-depth", "10", "--num-rollouts", "4", "--json", str(out)])
    assert status == 0, capsys.readouterr().err
    record = json.loads(out.read_text())
    assert record["env"] == env_id
    assert record["mean_return"] > record["random_return"] + 0.5 * abs(record["random_return"])  # acting in gymnasium
    assert record["oracle_return"] > record["random_return"] + 0.5 * abs(record["random_return"])
    assert record["normalized_return"] > 0.5
    assert oracle in capsys.readouterr().out


def test_without_a_verified_jax_twin_the_oracle_steps_the_real_env():
    step, how = gymnasium_eval.oracle_model(envs.env_spec("gymnasium/MountainCarContinuous-v0"))
    assert how.startswith("the real gymnasium env MountainCarContinuous-v0") and "reproduces only" in how


def test_without_a_state_setter_the_oracle_is_missing_and_says_why():
    import jax

    from cwm_jax import planning

    spec = envs.env_spec(TOY)
    said = []
    baselines = planning.evaluate_baselines(spec, planning.planner_config(spec, num_simulations=2),
                                            jax.random.split(jax.random.key(0), 2), said.append)
    assert np.isnan(baselines.oracle.mean) and baselines.random.lengths.tolist() == [5, 5]
    assert any("no oracle: the state of " + TOY + " cannot be set" in line for line in said)


def test_a_random_environment_is_flagged_when_its_transitions_are_recorded():
    with pytest.warns(DeterminismWarning, match="repeated .observation, action. pairs .* had different outcomes"):
        _, meta = data.collect(envs.env_spec("gymnasium/FrozenLake-v1"), "train")  # slippery ice, not declared random
    assert meta["determinism"][0].isdigit()
    rows = {"state": np.zeros((3, 1), np.float32), "action": np.zeros(3, np.int32),
            "next_state": np.array([[1.0], [1.0], [1.0 + 1e-7]], np.float32), "reward": np.zeros(3, np.float32),
            "done": np.zeros(3, bool)}
    assert source.collisions(rows) is None  # equal within the tolerance
    rows["reward"][2] = 1.0
    assert source.collisions(rows).startswith("1 of 2 repeated")


def test_an_environment_declared_random_is_routed_to_likelihood_without_a_warning():
    import warnings

    spec = envs.env_spec("gymnasium/Blackjack-v1")
    assert spec.stochastic and "random" in spec.description
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeterminismWarning)
        _, meta = data.collect(spec, "train")
    assert meta["determinism"].startswith("not checked: the environment is declared random")
    from cwm_jax.envs.gymnasium_blackjack import record_random

    assert source.collisions(record_random(200, first_seed=0)) is not None  # random: undeclared, it would warn


@pytest.mark.parametrize("env_id", ["gymnasium/CartPole-v1", "gymnasium/Pendulum-v1", "gymnasium/CliffWalking-v1"])
def test_the_real_env_as_a_model_reproduces_its_recorded_transitions(env_id):
    import jax
    import jax.numpy as jnp

    spec = envs.env_spec(env_id)
    split, _ = data.collect(spec, "test")
    part = slice(0, 400)
    next_state, reward, done = jax.jit(jax.vmap(source.real_step(spec)))(
        jnp.asarray(split.state[part]), jnp.asarray(split.action[part]))
    np.testing.assert_allclose(next_state, split.next_state[part], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reward, split.reward[part], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(done, split.done[part])


def test_an_env_whose_state_cannot_be_set_has_no_real_step():
    with pytest.raises(source.GymnasiumSourceError, match="cannot be set"):
        source.real_step(envs.env_spec(TOY))
