"""Trajectory data: splits, metadata, cache."""

import json

import numpy as np

from cwm_jax.data import transitions as data


def test_splits_are_disjoint_and_described():
    train, meta_train = data.load_split_with_metadata("CartPole", "train")
    test, meta_test = data.load_split_with_metadata("CartPole", "test")
    assert meta_train["seed"] != meta_test["seed"]
    for meta in (meta_train, meta_test):
        assert meta["env"] == "gymnax/CartPole" and meta["gymnax_version"]
        assert "random" in meta["policy"] and "heuristic" in meta["policy"]
    # No state of one split appears in the other: a single shared state fails.
    assert not {row.tobytes() for row in train.state} & {row.tobytes() for row in test.state}
    assert train.state.dtype == np.float32 and train.action.dtype == np.int32
    assert train.done.dtype == bool and train.done.any()
    # Consecutive transitions of an episode chain up: next_state == next state.
    same_episode = train.episode[1:] == train.episode[:-1]
    assert np.array_equal(train.next_state[:-1][same_episode], train.state[1:][same_episode])
    # Termination ends an episode: nothing is recorded after done.
    ends = np.flatnonzero(train.done)
    assert all(i + 1 == len(train) or train.episode[i + 1] != train.episode[i] for i in ends)


def test_heuristic_episodes_last_longer_than_random():
    train = data.load_split("CartPole", "train")
    lengths = np.bincount(train.episode)
    assert lengths[data.RANDOM_EPISODES:].mean() > 2 * lengths[: data.RANDOM_EPISODES].mean()


def test_cache_is_a_compressed_npz_with_metadata(monkeypatch, tmp_path):
    monkeypatch.setenv("CWM_JAX_CACHE", str(tmp_path))
    first = data.load_split("CartPole", "test")
    [path] = list((tmp_path / "transitions").glob("*.npz"))
    with np.load(path) as archive:
        assert json.loads(str(archive["metadata"]))["split"] == "test"
    again = data.load_split("CartPole", "test")
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    path.write_bytes(b"not an npz")  # a corrupt cache is rebuilt, not trusted
    rebuilt = data.load_split("CartPole", "test")
    assert np.array_equal(rebuilt.state, first.state)
