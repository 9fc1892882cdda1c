"""The one episode loop of the project: resetting and stepping a gymnax env, jitted.

`env_functions` turns a gymnax environment, or a gymnax wrapper around one,
into two pure functions with one output convention:

    reset(key) -> (obs, env_state)
    step(key, env_state, action) -> EnvStep(obs, env_state, reward, terminated, truncated)

A bare `gymnax.Environment` is driven through `reset_env`/`step_env` (no
auto-reset; the caller owns the time limit). A wrapper (`gymnax.wrappers`:
`FlattenObservationWrapper`, `LogWrapper`, `StickyActionWrapper`,
`LegacyStepAPIWrapper`, or your own `GymnaxWrapper`) is driven through its own
`reset`/`step`, because wrappers change what those two do and forward
`reset_env`/`step_env` to the inner env untouched: calling those would
silently skip the wrapper. Wrapper `step`s auto-reset (gymnax 1.0); the loops
here stop recording at the first termination or truncation, so that does not
change what they report.

`rollout` is the fixed-length `lax.scan` loop that records every step
(`cwm_jax.data.transitions` records its transitions with it, `experiments/check_envs.py`
checks environments with it, `experiments/speed.py` times planning with it);
`planners.evaluate` runs the early-exit `lax.while_loop` version over the same
`env_functions`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners.base import PlanFn

__all__ = ["EnvStep", "EnvStepFn", "ResetFn", "Transition", "env_functions", "identity", "rollout"]


class EnvStep(NamedTuple):
    """One real environment step (unbatched).

    Attributes:
      obs: the next observation (after an auto-reset, the reset observation).
      env_state: the next environment state.
      reward: float32 [].
      terminated: bool [], the episode ended in a terminal state.
      truncated: bool [], a wrapper's time limit ended the episode (always
        False for a bare env, whose time limit the caller owns).
    """

    obs: Any
    env_state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array


class Transition(NamedTuple):
    """What `rollout` records per step (leaves [T, ...] over the steps).

    Attributes:
      state: the planner state before the step, `obs_fn(obs)`.
      action: the policy's action (before `action_fn`).
      next_state: `obs_fn(next_obs)`.
      reward: float32.
      done: bool, termination only (a time limit is not recorded as done).
      valid: bool, False once the episode has ended (terminated or truncated).
    """

    state: Any
    action: jax.Array
    next_state: Any
    reward: jax.Array
    done: jax.Array
    valid: jax.Array


class _RolloutCarry(NamedTuple):
    obs: Any
    env_state: Any
    finished: jax.Array


ResetFn = Callable[[jax.Array], tuple[Any, Any]]
EnvStepFn = Callable[[jax.Array, Any, Any], EnvStep]


def _is_wrapper(env) -> bool:
    """True for a gymnax wrapper (driven through its own reset/step)."""
    from gymnax.environments.environment import Environment

    if isinstance(env, Environment) or getattr(env, "_env", None) is None:
        return False  # a gymnax env, or a duck-typed one with reset_env/step_env
    if "params" not in inspect.signature(env.step).parameters:
        raise ValueError(
            f"{type(env).__name__} keeps its state on the host (a gym/dm_env adapter) and cannot run "
            "inside jax.jit; pass the gymnax environment it wraps"
        )
    return True


def _scalar(x, dtype) -> jax.Array:
    return jnp.asarray(x, dtype).reshape(())


def env_functions(env, env_params, *, auto_reset: bool = False) -> tuple[ResetFn, EnvStepFn]:
    """`(reset, step)` of a gymnax env or wrapper, with one output convention.

    Args:
      env: a gymnax `Environment`, a gymnax wrapper around one, or any object
        with gymnax's `reset_env`/`step_env`.
      env_params: its params.
      auto_reset: a bare env steps through `env.step` (gymnax's auto-reset)
        instead of `step_env`. Wrappers always auto-reset.

    Returns:
      reset(key) -> (obs, env_state);
      step(key, env_state, action) -> EnvStep with scalar reward/terminated/truncated.
    """
    if _is_wrapper(env):

        def reset(key):
            return env.reset(key, env_params)

        def step(key, env_state, action) -> EnvStep:
            out = env.step(key, env_state, action, env_params)
            if len(out) == 5:  # LegacyStepAPIWrapper: (obs, state, reward, done, info)
                obs, env_state, reward, done, _ = out
                truncated = jnp.zeros((), jnp.bool_)
            else:  # gymnax 1.0: (obs, state, reward, terminated, truncated, info)
                obs, env_state, reward, done, truncated, _ = out
            return EnvStep(obs, env_state, _scalar(reward, jnp.float32), _scalar(done, jnp.bool_),
                           _scalar(truncated, jnp.bool_))

        return reset, step

    def reset(key):
        return env.reset_env(key, env_params)

    def step(key, env_state, action) -> EnvStep:
        if auto_reset:
            obs, env_state, reward, done, _, _ = env.step(key, env_state, action, env_params)
        else:
            obs, env_state, reward, done, _ = env.step_env(key, env_state, action, env_params)
        return EnvStep(obs, env_state, _scalar(reward, jnp.float32), _scalar(done, jnp.bool_),
                       jnp.zeros((), jnp.bool_))

    return reset, step


def identity(x):
    return x


def rollout(
    env,
    env_params,
    policy: PlanFn,
    key: jax.Array,
    *,
    num_steps: int,
    obs_fn: Callable[[Any], Any] | None = None,
    action_fn: Callable[[jax.Array], Any] | None = None,
    auto_reset: bool = False,
) -> Transition:
    """`num_steps` real steps from a reset, every step recorded (a `lax.scan`).

    Keys: `reset_key, key = split(key)`, then per step
    `policy_key, env_key = split(step_keys[t])` with `step_keys = split(key, num_steps)`.
    After the episode ends the loop goes on (a bare env keeps stepping from
    its terminal state; `auto_reset` or a wrapper starts a new episode), with
    `valid` False.

    Args:
      env, env_params: see `env_functions`.
      policy: (key, state) -> action.
      key: PRNG key of this episode.
      num_steps: steps recorded (static).
      obs_fn: observation -> policy state (default: the observation).
      action_fn: policy action -> env action (default: the action).
      auto_reset: see `env_functions`.

    Returns:
      Transition with leaves [num_steps, ...]. Pure; jit and vmap it.
    """
    obs_fn = obs_fn or identity
    action_fn = action_fn or identity
    reset, step = env_functions(env, env_params, auto_reset=auto_reset)
    reset_key, key = jax.random.split(key)
    obs, env_state = reset(reset_key)

    def body(carry: _RolloutCarry, step_key):
        policy_key, env_key = jax.random.split(step_key)
        state = obs_fn(carry.obs)
        action = policy(policy_key, state)
        out = step(env_key, carry.env_state, action_fn(action))
        record = Transition(state, action, obs_fn(out.obs), out.reward, out.terminated, ~carry.finished)
        finished = carry.finished | out.terminated | out.truncated
        return _RolloutCarry(out.obs, out.env_state, finished), record

    init = _RolloutCarry(obs, env_state, jnp.zeros((), jnp.bool_))
    _, records = jax.lax.scan(body, init, jax.random.split(key, num_steps))
    return records
