"""Full episodes in the real gymnax environment, for N seeds in one jitted call.

`make_evaluate(...)` returns `jax.jit(jax.vmap(episode))`: every seed runs a
whole episode (reset, then plan and `env.step_env` until termination or the
env's own time limit `params.max_steps_in_episode`) inside one `lax.while_loop`,
PureJaxRL style. The loop is a while rather than a scan so that a batch stops
as soon as every seed's episode has ended (a poor model fails in a few steps);
under vmap, finished seeds are masked, so results do not depend on the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners.base import Agent, PlanFn, as_agent, select_tree
from planners.sharding import shard_over_devices


class EpisodeResult(NamedTuple):
    """Per-episode outcome (leaves [N] when batched over seeds).

    Attributes:
      episode_return: float32, the undiscounted sum of real rewards.
      length: int32, real steps taken (<= max_steps_in_episode).
    """

    episode_return: jax.Array
    length: jax.Array


def random_policy(sample_action: Callable[[jax.Array], jax.Array]) -> PlanFn:
    """The uniform random baseline as a planner: (key, state) -> sample_action(key)."""

    def plan(key: jax.Array, state) -> jax.Array:
        del state
        return sample_action(key)

    return plan


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
      env: a gymnax `Environment`; only `reset_env` and `step_env` are used
        (no auto-reset).
      env_params: its params.
      policy: `plan(key, state) -> action`, or an `Agent` (e.g. open-loop CEM).
      obs_fn: observation -> planner state (e.g. `EnvSpec.flatten_obs`);
        default: the observation itself.
      action_fn: planner action -> what `env.step_env` takes (e.g.
        `EnvSpec.to_gymnax_action`); default: the action itself.
      max_steps: time limit; default `env_params.max_steps_in_episode`.

    Returns:
      episode(key) -> EpisodeResult of scalars. Pure; jit and vmap it.
    """
    agent = as_agent(policy)
    obs_fn = obs_fn if obs_fn is not None else (lambda obs: obs)
    action_fn = action_fn if action_fn is not None else (lambda action: action)
    limit = env_params.max_steps_in_episode if max_steps is None else max_steps

    def episode(key: jax.Array) -> EpisodeResult:
        key, reset_key = jax.random.split(key)
        obs, env_state = env.reset_env(reset_key, env_params)
        zero_i = jnp.zeros((), jnp.int32)
        carry = (key, env_state, obs_fn(obs), jnp.zeros((), jnp.bool_), zero_i, jnp.zeros((), jnp.float32))

        def running(done, t):
            return ~done & (t < limit)

        def cond(carry):
            _, _, _, done, t, _ = carry
            return running(done, t)

        def env_step(plan, i, carry):
            key, env_state, state, done, t, ret = carry
            key, step_key = jax.random.split(key)
            active = running(done, t)
            action = agent.act(plan, i)
            obs, next_env_state, reward, terminated, _ = env.step_env(
                step_key, env_state, action_fn(action), env_params
            )
            env_state = select_tree(active, next_env_state, env_state)
            state = select_tree(active, obs_fn(obs), state)
            ret = ret + jnp.where(active, jnp.asarray(reward, jnp.float32).reshape(()), 0.0)
            done = done | (active & jnp.asarray(terminated, jnp.bool_).reshape(()))
            return key, env_state, state, done, t + active.astype(jnp.int32), ret

        def body(carry):
            key, env_state, state, done, t, ret = carry
            key, plan_key = jax.random.split(key)
            plan = agent.search(plan_key, state)
            carry = (key, env_state, state, done, t, ret)
            if agent.period == 1:
                return env_step(plan, zero_i, carry)
            return jax.lax.fori_loop(0, agent.period, lambda i, c: env_step(plan, i, c), carry)

        _, _, _, _, length, ret = jax.lax.while_loop(cond, body, carry)
        return EpisodeResult(episode_return=ret, length=length)

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

    Arguments as in `make_episode_fn`; `mesh` (from `planners.seed_mesh`)
    splits the seeds over its devices (`planners.sharding`). Use
    `.lower(keys).compile()` on the result to time compilation apart from running.
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


def evaluate(
    env,
    env_params,
    policy: PlanFn | Agent,
    seeds: int | Sequence[int],
    *,
    base_seed: int = 0,
    obs_fn: Callable[[Any], Any] | None = None,
    action_fn: Callable[[jax.Array], Any] | None = None,
) -> EpisodeResult:
    """Runs one episode per seed (one jitted, vmapped call); returns [N] arrays."""
    run = make_evaluate(env, env_params, policy, obs_fn=obs_fn, action_fn=action_fn)
    return jax.block_until_ready(run(seed_keys(seeds, base_seed)))


def normalized_return(model: float, random: float, oracle: float) -> float | None:
    """The paper's Eq. 3: (R_model - R_random) / (R_oracle - R_random).

    Returns None (report "N/A") when the oracle does not beat random, as for
    MountainCar and Acrobot in the paper.
    """
    gap = oracle - random
    if not math.isfinite(gap) or gap <= 1e-6 * max(1.0, abs(random)):
        return None
    return (model - random) / gap
