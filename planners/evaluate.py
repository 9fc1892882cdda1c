"""Full episodes in the real gymnax environment, for N seeds in one jitted call.

`make_evaluate(...)` returns `jax.jit(jax.vmap(episode))`: every seed runs a
whole episode (reset, then plan and step until termination or the
env's own time limit `params.max_steps_in_episode`) inside one `lax.while_loop`,
PureJaxRL style (`planners.episode.env_functions` resets and steps the env
or its gymnax wrapper). The loop is a while rather than a scan so that a batch stops
as soon as every seed's episode has ended (a poor model fails in a few steps);
under vmap, finished seeds are masked, so results do not depend on the batch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners.base import Agent, PlanFn, as_agent, select_tree
from planners.episode import env_functions, identity
from planners.sharding import shard_over_devices

__all__ = [
    "EpisodeResult",
    "RandomPolicy",
    "evaluate",
    "make_episode_fn",
    "make_evaluate",
    "normalized_return",
    "random_policy",
    "seed_keys",
]


class EpisodeResult(NamedTuple):
    """Per-episode outcome (leaves [N] when batched over seeds).

    Attributes:
      episode_return: float32, the undiscounted sum of real rewards.
      length: int32, real steps taken (<= max_steps_in_episode).
    """

    episode_return: jax.Array
    length: jax.Array


@dataclasses.dataclass(frozen=True)
class RandomPolicy:
    """The uniform random baseline as a planner: (key, state) -> sample_action(key).

    A frozen dataclass rather than a closure, so that two `random_policy(f)`
    with the same `f` compare equal and `evaluate` reuses its compiled episode.
    """

    sample_action: Callable[[jax.Array], jax.Array]

    def __call__(self, key: jax.Array, state) -> jax.Array:
        del state
        return self.sample_action(key)


def random_policy(sample_action: Callable[[jax.Array], jax.Array]) -> PlanFn:
    """The uniform random baseline as a planner: (key, state) -> sample_action(key)."""
    return RandomPolicy(sample_action)


class _EpisodeCarry(NamedTuple):
    """The while-loop state of one episode (scalars, unbatched)."""

    key: jax.Array
    env_state: Any
    state: Any  # the planner state, obs_fn(obs)
    done: jax.Array  # bool: terminated or truncated
    length: jax.Array  # int32: real steps taken
    episode_return: jax.Array  # float32


def make_episode_fn(
    env,
    env_params,
    policy: PlanFn | Agent,
    *,
    obs_fn: Callable[[Any], Any] | None = None,
    action_fn: Callable[[jax.Array], Any] | None = None,
    max_steps: int | None = None,
) -> Callable[[jax.Array], EpisodeResult]:
    """`episode(key) -> EpisodeResult`: one full episode in the real env.

    Args:
      env: a gymnax `Environment` (driven through `reset_env`/`step_env`, no
        auto-reset), or a gymnax wrapper around one (`FlattenObservationWrapper`,
        `LogWrapper`, ...; driven through its own `reset`/`step`, so the
        wrapper applies). See `planners.episode.env_functions`.
      env_params: its params.
      policy: `plan(key, state) -> action`, or an `Agent` (e.g. open-loop CEM).
      obs_fn: observation -> planner state (e.g. `EnvSpec.flatten_obs`);
        default: the observation itself.
      action_fn: planner action -> what the env's step takes (e.g.
        `EnvSpec.to_gymnax_action`); default: the action itself.
      max_steps: time limit; default `env_params.max_steps_in_episode`.

    Returns:
      episode(key) -> EpisodeResult of scalars. Pure; jit and vmap it.
    """
    agent = as_agent(policy)
    obs_fn = obs_fn or identity
    action_fn = action_fn or identity
    limit = env_params.max_steps_in_episode if max_steps is None else max_steps
    reset, env_step_fn = env_functions(env, env_params)

    def running(carry: _EpisodeCarry) -> jax.Array:
        return ~carry.done & (carry.length < limit)

    def env_step(plan, i, carry: _EpisodeCarry) -> _EpisodeCarry:
        key, step_key = jax.random.split(carry.key)
        active = running(carry)
        out = env_step_fn(step_key, carry.env_state, action_fn(agent.act(plan, i)))
        return _EpisodeCarry(
            key=key,
            env_state=select_tree(active, out.env_state, carry.env_state),
            state=select_tree(active, obs_fn(out.obs), carry.state),
            done=carry.done | (active & (out.terminated | out.truncated)),
            length=carry.length + active.astype(jnp.int32),
            episode_return=carry.episode_return + jnp.where(active, out.reward, 0.0),
        )

    def body(carry: _EpisodeCarry) -> _EpisodeCarry:
        key, plan_key = jax.random.split(carry.key)
        plan = agent.search(plan_key, carry.state)
        carry = carry._replace(key=key)
        if agent.period == 1:
            return env_step(plan, jnp.zeros((), jnp.int32), carry)
        return jax.lax.fori_loop(0, agent.period, lambda i, c: env_step(plan, i, c), carry)

    def episode(key: jax.Array) -> EpisodeResult:
        key, reset_key = jax.random.split(key)
        obs, env_state = reset(reset_key)
        init = _EpisodeCarry(
            key=key,
            env_state=env_state,
            state=obs_fn(obs),
            done=jnp.zeros((), jnp.bool_),
            length=jnp.zeros((), jnp.int32),
            episode_return=jnp.zeros((), jnp.float32),
        )
        final = jax.lax.while_loop(running, body, init)
        return EpisodeResult(episode_return=final.episode_return, length=final.length)

    return episode


def make_evaluate(
    env,
    env_params,
    policy: PlanFn | Agent,
    *,
    obs_fn: Callable[[Any], Any] | None = None,
    action_fn: Callable[[jax.Array], Any] | None = None,
    max_steps: int | None = None,
    mesh=None,
) -> Callable[[jax.Array], EpisodeResult]:
    """`jax.jit(jax.vmap(episode))`: keys [N] -> EpisodeResult with leaves [N].

    The path with full control: you hold the compiled function, call it as
    often as you like, and can time compilation apart from running with
    `.lower(keys).compile()`. Arguments as in `make_episode_fn`; `mesh` (from
    `planners.seed_mesh`) splits the seeds over its devices (`planners.sharding`).
    """
    episode = make_episode_fn(
        env, env_params, policy, obs_fn=obs_fn, action_fn=action_fn, max_steps=max_steps
    )
    if mesh is not None:
        return shard_over_devices(jax.vmap(episode), mesh)
    return jax.jit(jax.vmap(episode))


def seed_keys(seeds: int | Sequence[int], base_seed: int = 0) -> jax.Array:
    """Keys [N] for N seeds: `fold_in(key(base_seed), i)` for i in seeds.

    `seeds` is a count N (meaning seeds 0..N-1) or an explicit list.
    """
    ids = jnp.arange(seeds) if isinstance(seeds, int) else jnp.asarray(list(seeds))
    base = jax.random.key(base_seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(ids)


@functools.partial(jax.jit, static_argnames=("env", "policy", "obs_fn", "action_fn", "max_steps"))
def _cached_episodes(keys, env_params, *, env, policy, obs_fn, action_fn, max_steps) -> EpisodeResult:
    """vmap(episode) under ONE module-level jit: env, policy and the functions
    are static (hashed), params and keys traced, so a repeated call with the
    same env/policy/functions and shapes reuses the compiled function."""
    episode = make_episode_fn(
        env, env_params, policy, obs_fn=obs_fn, action_fn=action_fn, max_steps=max_steps
    )
    return jax.vmap(episode)(keys)


def _hashable(*objects) -> bool:
    try:
        for obj in objects:
            hash(obj)
    except TypeError:
        return False
    return True


def evaluate(
    env,
    env_params,
    policy: PlanFn | Agent,
    seeds: int | Sequence[int],
    *,
    base_seed: int = 0,
    obs_fn: Callable[[Any], Any] | None = None,
    action_fn: Callable[[jax.Array], Any] | None = None,
    max_steps: int | None = None,
) -> EpisodeResult:
    """Runs one episode per seed (one jitted, vmapped call); returns [N] arrays.

    The compiled function is cached: a second call with the same `env`,
    `policy`, `obs_fn`, `action_fn`, `max_steps` (same objects, or equal ones:
    `random_policy(f)` twice is equal) and number of seeds does not compile
    again; `env_params` may change between calls. The cache holds on to the
    policies it has seen. For full control (your own compiled function,
    compile timed apart, a device mesh) use `make_evaluate`.
    """
    keys = seed_keys(seeds, base_seed)
    if not _hashable(env, policy, obs_fn, action_fn, max_steps):
        run = make_evaluate(env, env_params, policy, obs_fn=obs_fn, action_fn=action_fn, max_steps=max_steps)
        return jax.block_until_ready(run(keys))
    result = _cached_episodes(
        keys, env_params, env=env, policy=policy, obs_fn=obs_fn, action_fn=action_fn, max_steps=max_steps
    )
    return jax.block_until_ready(result)


def normalized_return(model: float, random: float, oracle: float) -> float | None:
    """The paper's Eq. 3: (R_model - R_random) / (R_oracle - R_random).

    Returns None (report "N/A") when the oracle does not beat random, as for
    MountainCar and Acrobot in the paper.
    """
    gap = oracle - random
    if not math.isfinite(gap) or gap <= 1e-6 * max(1.0, abs(random)):
        return None
    return (model - random) / gap
