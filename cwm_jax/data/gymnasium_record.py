"""Transitions recorded through gymnasium itself (host loop, this process: gymnasium code is trusted).

One split: `random_episodes` episodes of the action space's own `sample()`
and `heuristic_episodes` of a better-than-random policy, each from
`reset(seed=...)` with seeds disjoint between splits, cut at `max_steps`.
The better-than-random policy is the gymnax twin's heuristic where the env
has one (CartPole-v1, Pendulum-v1, ...); else, where the state can be set
from the observation, a one-step lookahead on the real env (the action with
the best immediate reward, ties broken at random; continuous actions pick
the best of 8 samples); else uniformly random (the metadata says so). 10% of
its actions are random, so episodes differ. `done` is `terminated`; a
truncated episode just ends.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from cwm_jax.envs import EnvSpec, gymnasium_source

__all__ = ["EPSILON", "LOOKAHEAD_SAMPLES", "heuristic_name", "record"]

EPSILON = 0.1
LOOKAHEAD_SAMPLES = 8


def heuristic_name(spec: EnvSpec) -> str:
    """What the better-than-random episodes were played with, in words (for the metadata)."""
    src = gymnasium_source.source(spec.source_id)[0]
    if spec.source_id in gymnasium_source.TWINS:
        return f"the gymnax twin's heuristic policy (cwm_jax.envs.{spec.reference}.heuristic_policy)"
    if src.set_state is not None:
        return "a one-step lookahead on the real environment (best immediate reward)"
    return "uniformly random actions (no heuristic: the state cannot be set, so no lookahead)"


def _heuristic(spec: EnvSpec, env, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """obs float32 [obs_dim] -> contract action (numpy), with EPSILON random actions."""
    src = gymnasium_source.source(spec.source_id)[0]
    if spec.source_id in gymnasium_source.TWINS:
        policy = jax.jit(spec.heuristic_policy)
        keys = iter(jax.random.split(jax.random.key(int(rng.integers(2**31))), 100_000))
        greedy = lambda obs: np.asarray(policy(next(keys), obs))  # noqa: E731
    elif src.set_state is not None:
        replay = gymnasium_source.make_replay(src)

        def greedy(obs):
            if spec.discrete:
                candidates = list(rng.permutation(spec.num_actions).astype(np.int32))
            else:
                candidates = list(rng.uniform(spec.action_low, spec.action_high,
                                              (LOOKAHEAD_SAMPLES, spec.action_dim)).astype(np.float32))
            rewards = [replay(obs, src.to_env_action(a))[1] for a in candidates]
            return candidates[int(np.argmax(rewards))]
    else:
        greedy = lambda obs: _random(spec, rng)  # noqa: E731
    return lambda obs: _random(spec, rng) if rng.random() < EPSILON else greedy(obs)


def _random(spec: EnvSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.discrete:
        return np.int32(rng.integers(spec.num_actions))
    return rng.uniform(spec.action_low, spec.action_high, (spec.action_dim,)).astype(np.float32)


def record(spec: EnvSpec, seed: int, *, random_episodes: int, heuristic_episodes: int, max_steps: int):
    """Per-transition numpy arrays (state, action, next_state, reward, done, episode) of one split."""
    src = gymnasium_source.source(spec.source_id)[0]
    env = src.make_env()
    rng = np.random.default_rng(seed)
    heuristic = _heuristic(spec, env, rng)
    columns: tuple[list, ...] = ([], [], [], [], [], [])
    for episode in range(random_episodes + heuristic_episodes):
        obs = src.flatten(env.reset(seed=int(seed * 100_000 + episode))[0])
        for _ in range(max_steps):
            action = _random(spec, rng) if episode < random_episodes else heuristic(obs)
            raw = env.step(src.to_env_action(action))
            next_obs = src.flatten(raw[0])
            for column, value in zip(columns, (obs, action, next_obs, raw[1], raw[2], episode), strict=True):
                column.append(value)
            if raw[2] or raw[3]:
                break
            obs = next_obs
    env.close()
    action_dtype = np.int32 if spec.discrete else np.float32
    return (np.asarray(columns[0], np.float32), np.asarray(columns[1], action_dtype),
            np.asarray(columns[2], np.float32), np.asarray(columns[3], np.float32),
            np.asarray(columns[4], bool), np.asarray(columns[5], np.int32))
