"""PPO inside a CWM (planners.ppo), its saved format, and its CLI hooks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import planners
from cwm_jax import envs
from cwm_jax.commands import main as cli
from cwm_jax.commands import common as command
from cwm_jax.errors import UsageError
from cwm_jax.gymnax_env import CWMEnv
from cwm_jax.validate.loader import load_reference
from cwm_jax.models import learned_value
from planners import ppo
from planners.ppo_network import orthogonal

# 300 updates of 4 envs x 16 steps on a 16-unit network: a few seconds.
TINY = ppo.PPOConfig(
    total_timesteps=300 * 64, num_envs=4, num_steps=16, update_epochs=2, num_minibatches=2,
    learning_rate=3e-3, hidden=(16,), num_evals=3,
)
SEEDS = 4


@pytest.fixture(scope="module")
def cartpole():
    spec = envs.env_spec("gymnax/CartPole")
    return spec, CWMEnv(spec, load_reference(spec))


@pytest.fixture(scope="module")
def trained(cartpole):
    """TINY PPO trained in the reference CartPole CWM; real-env episodes on the curve."""
    spec, env = cartpole
    real_env, real_params = spec.make_gymnax()
    network, _ = ppo.network_for(env, env.default_params, TINY.hidden)

    def real_return(params, key):
        policy = ppo.make_policy(network, params)
        episode = planners.make_episode_fn(real_env, real_params, policy, obs_fn=spec.flatten_obs)
        return episode(key).episode_return

    train = jax.jit(jax.vmap(ppo.make_train(env, env.default_params, TINY, eval_fn=real_return)))
    out = train(planners.seed_keys(SEEDS))
    return network, out, real_return


def test_training_inside_the_cwm_beats_random_in_the_real_env(cartpole, trained):
    spec, _ = cartpole
    real_env, real_params = spec.make_gymnax()
    random = planners.evaluate(real_env, real_params, planners.random_policy(spec.random_action), 16)
    random_mean = float(random.episode_return.mean())
    _, out, _ = trained
    curve = np.asarray(out.eval_return)  # [SEEDS, num_evals]
    assert curve.shape == (SEEDS, TINY.num_evals)
    final = curve[:, -1].mean()
    assert final > 3 * random_mean, (final, random_mean, curve)
    # It learned in the model too: later episodes in the CWM last longer than the first ones.
    model = np.asarray(out.model_return)
    assert model[:, -1].mean() > model[:, 0].mean() + 20, model


@pytest.mark.parametrize("shape", [(4, 16), (16, 16), (16, 2), (16, 1)])
def test_orthogonal_init_is_orthonormal_and_scaled(shape):
    kernel = np.asarray(orthogonal(0.5)(jax.random.key(3), shape))
    assert kernel.shape == shape
    small = min(shape)
    gram = kernel @ kernel.T if shape[0] < shape[1] else kernel.T @ kernel  # [small, small]
    np.testing.assert_allclose(gram, 0.25 * np.eye(small), atol=1e-5)


def test_training_compiles_without_lapack(cartpole):
    """jax's orthogonal init (a LAPACK QR), batched over seeds, deadlocked train on 2 cores."""
    _, env = cartpole
    train = jax.jit(jax.vmap(ppo.make_train(env, env.default_params, TINY)))
    hlo = train.lower(planners.seed_keys(2)).as_text()
    assert "custom_call" not in hlo or "lapack" not in hlo


def test_gae_stops_at_episode_ends():
    ones = jnp.ones((3, 1))
    transitions = ppo.Transition(
        done=jnp.array([[False], [True], [False]]), action=ones, value=jnp.zeros((3, 1)),
        reward=ones, log_prob=ones, obs=ones,
    )
    advantages, targets = ppo.gae(transitions, jnp.array([10.0]), gamma=0.5, gae_lambda=1.0)
    # Step 1 ended its episode: it gets its reward only; step 0 sees step 1;
    # step 2 bootstraps from the last value 10.
    np.testing.assert_allclose(np.asarray(advantages)[:, 0], [1.5, 1.0, 6.0])
    np.testing.assert_allclose(np.asarray(targets), np.asarray(advantages))


@pytest.fixture(scope="module")
def untrained():
    """A freshly initialised CartPole network (enough for the file and CLI tests)."""
    network = ppo.ActorCritic(num_outputs=2, discrete=True, hidden=(16,))
    return network, network.init(jax.random.key(0), jnp.zeros((4,)))


def test_save_load_roundtrip_and_bad_files(tmp_path, untrained):
    network, params = untrained
    path = tmp_path / "cartpole.ppo"
    ppo.save(path, network, params, {"env": "gymnax/CartPole", "obs_dim": 4, "gamma": 0.99, "reward_scale": 1.0})
    loaded_net, loaded, header = ppo.load(path)
    assert header["hidden"] == [16] and header["discrete"] and header["num_outputs"] == 2
    states = jax.random.normal(jax.random.key(1), (5, 4))
    value, loaded_value = ppo.make_value_fn(network, params), ppo.make_value_fn(loaded_net, loaded)
    np.testing.assert_array_equal(jax.vmap(value)(jnp.zeros(5), states), jax.vmap(loaded_value)(jnp.zeros(5), states))
    assert np.abs(np.asarray(jax.vmap(value)(jnp.zeros(5), states))).max() > 0  # a real comparison
    prior = jax.vmap(ppo.make_prior_fn(loaded_net, loaded))(states)
    assert prior.shape == (5, 2) and np.isfinite(prior).all()

    junk = tmp_path / "junk.ppo"
    junk.write_bytes(b"not a header\n\x00\x01")
    with pytest.raises(ValueError, match="not a cwm-jax-ppo parameter file"):
        ppo.load(junk)
    truncated = tmp_path / "truncated.ppo"
    truncated.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match="parameters do not match"):
        ppo.load(truncated)


def test_plan_value_option(tmp_path, untrained):
    network, params = untrained
    spec = envs.env_spec("gymnax/CartPole")
    path = tmp_path / "cp.ppo"
    ppo.save(path, network, params, {"env": "gymnax/CartPole", "obs_dim": 4, "gamma": 0.99, "reward_scale": 2.0})
    assert learned_value(spec, None) == {} and learned_value(spec, ["rollouts"]) == {}
    learned = learned_value(spec, ["learned", str(path)])
    state = jnp.array([0.0, 0.1, 0.02, -0.1])
    raw = ppo.make_value_fn(network, params)(None, state)
    # The value comes back in reward units (the header's reward_scale undone).
    np.testing.assert_allclose(learned["value_fn"](None, state), raw / 2.0, rtol=1e-6)
    assert learned["prior_fn"](state).shape == (2,)
    with pytest.raises(UsageError, match="not for gymnax/Acrobot"):
        learned_value(envs.env_spec("gymnax/Acrobot"), ["learned", str(path)])
    with pytest.raises(UsageError, match="'rollouts' or 'learned PATH'"):
        learned_value(spec, ["learned"])
    with pytest.raises(UsageError, match="No such file"):
        learned_value(spec, ["learned", str(tmp_path / "missing.ppo")])


def test_train_cli_checks_a_model_file_before_training(tmp_path, capsys):
    model = tmp_path / "bad.py"
    model.write_text("import os\nimport jax.numpy as jnp\n\ndef step(state, action):\n    return state, 1.0, False\n")
    assert cli.main(["train", "--model", str(model), "--steps", "1024", "--evals", "1"]) == command.EXIT_FAILED
    err = capsys.readouterr().err
    assert "line 1" in err and "os" in err and "Traceback" not in err
    assert cli.main(["train", "--env", "gymnax/NoSuchEnv"]) == command.EXIT_USAGE
    assert "unknown environment" in capsys.readouterr().err
