"""Recorded datasets as a source (cwm_jax/data/datasets.py): the .npz layout, Minari, `--data`, bad input."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest

from cwm_jax import envs, sandbox as sandbox_module
from cwm_jax.commands import main as cli
from cwm_jax.data import datasets
from cwm_jax.data.transitions import load_split
from cwm_jax.envs import recorded
from cwm_jax.errors import DeterminismWarning, UsageError
from cwm_jax.reference import source as reference_source
from cwm_jax.sandbox import Sandbox
from synth.testing import scripted_llm
from synth.testing.llm_server import LLMTestServer

DESCRIPTION = "A cart moves on a track with a pole hinged on it; push it left (0) or right (1) to keep the pole up."


def _record_cartpole(episodes: int = 12) -> dict[str, np.ndarray]:
    import gymnasium

    env = gymnasium.make("CartPole-v1")
    rows: dict[str, list] = {name: [] for name in datasets.ARRAYS}
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        while True:
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for name, value in zip(datasets.ARRAYS, (obs, action, reward, next_obs, terminated, truncated)):
                rows[name].append(value)
            obs = next_obs
            if terminated or truncated:
                break
    arrays = {name: np.asarray(values) for name, values in rows.items()}
    arrays["observation_space"], arrays["action_space"] = env.observation_space, env.action_space
    return arrays


@pytest.fixture(autouse=True)
def registry_as_before():
    """What a test registers is removed after it: the registry is the process's, shared with later tests."""
    before = set(envs.names())
    yield
    for env_id in set(envs.names()) - before:
        envs.unregister(env_id)


@pytest.fixture(scope="module")
def recording():
    return _record_cartpole()


@pytest.fixture()
def cart_npz(tmp_path, recording):
    return datasets.save_npz(tmp_path / "cart.npz", **recording, description=DESCRIPTION)


@pytest.fixture(scope="module")
def shared_sandbox():
    with Sandbox() as box:
        yield box


@pytest.fixture()
def use_shared_sandbox(monkeypatch, shared_sandbox):
    monkeypatch.setattr(sandbox_module, "Sandbox", lambda **kwargs: contextlib.nullcontext(shared_sandbox))


def test_an_npz_dataset_is_split_by_whole_episodes_and_resolvable_from_the_cache(cart_npz, recording):
    spec = datasets.load_dataset(cart_npz)
    assert spec.id.startswith("data/cart-") and spec.obs_dim == 4 and spec.num_actions == 2
    assert spec.description == spec.description_for("docs") == DESCRIPTION
    train, test = load_split(spec, "train"), load_split(spec, "test")
    assert len(train) + len(test) == len(recording["rewards"])
    assert train.episode.max() + 1 == 6 and test.episode.max() + 1 == 6  # 12 episodes, half each
    ends = np.flatnonzero(recording["terminations"] | recording["truncations"])
    lengths = np.diff(np.r_[-1, ends])  # the recorded episodes' lengths
    split_lengths = np.r_[np.bincount(train.episode), np.bincount(test.episode)]
    assert sorted(split_lengths) == sorted(lengths)  # whole episodes only, none cut or shared
    rebuilt = recorded.spec_for(spec.id)  # what a sandbox worker sees: the spec from the cached split alone
    assert rebuilt.from_records and (rebuilt.obs_dim, rebuilt.num_actions) == (4, 2)
    with pytest.raises(UsageError, match="known here only by its recorded transitions"):
        rebuilt.make_gymnax()


def test_check_and_fit_score_the_reference_on_held_out_episodes(cart_npz, tmp_path, use_shared_sandbox, capsys):
    model = tmp_path / "cartpole.py"
    model.write_text(reference_source("gymnax/CartPole"))
    assert cli.main(["check", str(model), "--data", str(cart_npz), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["strict_accuracy"] == 1.0 and report["env"].startswith("data/cart-")
    wrong = tmp_path / "wrong.py"
    wrong.write_text(reference_source("gymnax/CartPole").replace("GRAVITY = 9.8", "GRAVITY = 9.81"))
    assert cli.main(["check", str(wrong), "--data", str(cart_npz), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["strict_accuracy"] < 0.9
    assert cli.main(["fit", str(wrong), "--data", str(cart_npz), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["after"]["test_strict_accuracy"] == 1.0


def test_synth_on_a_dataset_with_the_test_server_writes_an_exact_model(cart_npz, tmp_path, use_shared_sandbox,
                                                                        capsys):
    (tmp_path / "about.txt").write_text("Balance the pole on the cart.\n")
    with LLMTestServer(responder=scripted_llm.responder) as server:
        status = cli.main(["synth", "--data", str(cart_npz), "--description-file", str(tmp_path / "about.txt"),
                           "--model", server.model, "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                           "--budget", "4", "--no-fit"])
        prompts = [r["messages"][-1]["content"] for r in server.chat_requests]
    out = capsys.readouterr().out
    assert status == 0 and "check it on the held-out episodes" in out
    assert all("Balance the pole on the cart." in p and DESCRIPTION not in p for p in prompts[:1])
    assert cli.main(["check", str(tmp_path / "run" / "best.py"), "--data", str(cart_npz), "--split", "test",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["strict_accuracy"] == 1.0


def test_a_minari_dataset_is_a_source(tmp_path, monkeypatch, use_shared_sandbox, capsys):
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    import gymnasium

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = minari.DataCollector(gymnasium.make("CartPole-v1"))
    for seed in range(6):
        env.reset(seed=seed)
        while not any(env.step(env.action_space.sample())[2:4]):
            pass
    with pytest.warns(UserWarning):  # minari asks for an author and a permalink
        env.create_dataset(dataset_id="cwm/cartpole-v0", algorithm_name="random", description=DESCRIPTION)
    spec = datasets.load_dataset("minari/cwm/cartpole-v0")
    assert spec.description == DESCRIPTION and spec.num_actions == 2
    assert load_split(spec, "train").episode.max() + 1 == 3 == load_split(spec, "test").episode.max() + 1
    model = tmp_path / "cartpole.py"
    model.write_text(reference_source("gymnax/CartPole"))
    assert cli.main(["check", str(model), "--data", "minari/cwm/cartpole-v0", "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["strict_accuracy"] == 1.0


def _broken(tmp_path, recording, **changes):
    arrays = {k: v for k, v in recording.items() if k in datasets.ARRAYS}
    arrays.update({k: v for k, v in changes.items() if k in datasets.ARRAYS})
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    sidecar = {"observation_space": {"type": "Box", "shape": [4]}, "action_space": {"type": "Discrete", "n": 2}}
    sidecar.update(changes.get("sidecar", {}))
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


@pytest.mark.parametrize("change, message", [
    ({"rewards": None}, "missing array.s. rewards"),
    ({"actions": "short"}, "actions has .* rows, rewards has"),
    ({"next_observations": "nan"}, "next_observations holds NaN or infinity .first at row 3."),
    ({"actions": "out of range"}, "action 2 at row 0 is outside Discrete.2, start=0."),
    ({"sidecar": {"action_space": {"type": "MultiDiscrete", "nvec": [2, 2]}}}, "action space must be an object"),
    ({"sidecar": {"action_space": {"type": "Box", "shape": [1], "low": [-1], "high": [2, 3]}}},
     "'high' must be one finite number"),
    ({"sidecar": {"observation_space": {"type": "Box", "shape": [5]}}}, "observations rows have shape .4,., the "
                                                                        "observation space has 5 values"),
    ({"terminations": "single episode"}, "one episode only"),
])
def test_a_malformed_dataset_is_one_error_line_and_exit_2(tmp_path, recording, change, message, capsys):
    key, value = next(iter(change.items()))
    if value == "short":
        change = {key: recording[key][:-1]}
    elif value == "nan":
        broken = recording[key].astype(np.float32).copy()
        broken[3, 1] = np.nan
        change = {key: broken}
    elif value == "out of range":
        change = {key: np.full_like(recording[key], 2)}
    elif value == "single episode":
        change = {"terminations": np.zeros_like(recording["terminations"]),
                  "truncations": np.zeros_like(recording["truncations"])}
    path = _broken(tmp_path, recording, **change)
    status = cli.main(["check", str(tmp_path / "model.py"), "--data", str(path)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert __import__("re").search(message, err), err


def test_a_missing_sidecar_or_file_is_named(tmp_path, cart_npz, capsys):
    cart_npz.with_suffix(".json").unlink()
    assert cli.main(["check", "m.py", "--data", str(cart_npz)]) == 2
    assert "sidecar" in capsys.readouterr().err
    assert cli.main(["synth", "--data", str(tmp_path / "none.npz"), "--model", "m", "--out", str(tmp_path)]) == 2
    assert "none.npz" in capsys.readouterr().err and not (tmp_path / "checkpoint.json").exists()


def test_a_dataset_with_disagreeing_repeats_warns_with_the_measured_reason(tmp_path, recording):
    arrays = {k: v.copy() for k, v in recording.items() if k in datasets.ARRAYS}
    arrays["observations"][1] = arrays["observations"][0]  # same (observation, action), another outcome
    arrays["actions"][1] = arrays["actions"][0]
    path = datasets.save_npz(tmp_path / "noisy.npz", **arrays, observation_space=recording["observation_space"],
                             action_space=recording["action_space"])
    with pytest.warns(DeterminismWarning, match="1 of 1 repeated .observation, action. pairs"):
        datasets.load_dataset(path)


def test_a_discrete_action_space_starting_elsewhere_is_shifted_to_the_contract(tmp_path, recording):
    arrays = {k: v for k, v in recording.items() if k in datasets.ARRAYS}
    arrays["actions"] = arrays["actions"] + 3
    path = datasets.save_npz(tmp_path / "shifted.npz", **arrays, observation_space=recording["observation_space"],
                             action_space={"type": "Discrete", "n": 2, "start": 3})
    spec = datasets.load_dataset(path)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    assert set(np.concatenate([train.action, test.action]).tolist()) == {0, 1}


def test_register_an_own_gymnax_environment_records_and_scores_it(use_shared_sandbox):
    import gymnax

    import cwm_jax

    env, params = gymnax.make("CartPole-v1")
    spec = cwm_jax.register(env, name="MyCartPole", description=DESCRIPTION, overwrite=True,
                            reference_source=reference_source("gymnax/CartPole"))
    assert envs.env_spec("gymnax/MyCartPole") is spec and spec.id in envs.names()
    with pytest.raises(UsageError, match="built-in"):
        cwm_jax.register(env, name="CartPole", description=DESCRIPTION)
    with pytest.raises(UsageError, match="already registered"):
        cwm_jax.register(env, name="MyCartPole", description=DESCRIPTION)
    with sandbox_module.Sandbox() as box:
        result = box.score(reference_source("gymnax/CartPole"), spec, splits=("test",))
    assert result.valid and result.summary["strict_accuracy"] == 1.0
