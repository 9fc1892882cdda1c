"""A Code World Model as a gymnax `Environment`.

`CWMEnv(spec, step_fn)` behaves like the real gymnax environment of `spec`,
except that the dynamics, rewards and terminations come from the CWM:

- `reset_env` draws from the REAL environment's reset distribution (same key,
  same start state) and returns the observation flattened to [obs_dim];
- `step_env` calls the CWM on the flat observation;
- the time limit is the real one (`params.max_steps_in_episode`), applied by
  the base class's `step`, which also auto-resets, so the env drops into
  gymnax-based RL code (PureJaxRL etc.) unchanged;
- `params` are the real environment's params; `action_space`,
  `num_actions` are the real ones, `observation_space` is the real one
  flattened.

    env = CWMEnv(spec, load_reference(spec))
    params = env.default_params
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from cwm_jax import envs
from cwm_jax.envs.spec import EnvSpec, StepFn
from cwm_jax.validate.loader import check_step_shapes


@struct.dataclass
class CWMEnvState(environment.EnvState):
    """State of a `CWMEnv`.

    Attributes:
      time: steps since reset (int32 []), as in every gymnax state.
      obs: float32 [obs_dim], the CWM state (the flat observation).
      terminated: bool [], whether the last CWM step reported done.
    """

    obs: jax.Array
    terminated: jax.Array


class CWMEnv(environment.Environment[CWMEnvState, Any]):
    """A gymnax environment whose dynamics are a CWM `step(state, action)`.

    Args:
      spec: the environment the CWM models (reset distribution, time limit,
        spaces): an EnvSpec or its id, e.g. "gymnax/CartPole".
      step_fn: the CWM, `step(state [obs_dim], action) -> (next_state, reward,
        done)`, e.g. from `cwm_jax.validate.loader.load_reference(spec)`, or
        `spec.oracle_step`.
    """

    def __init__(self, spec: EnvSpec | str, step_fn: StepFn):
        super().__init__()
        self.spec = spec = envs.env_spec(spec)
        check_step_shapes(step_fn, spec)  # a wrongly shaped step fails here, named, not in a reshape later
        self.step_fn = step_fn
        self.real_env, self.real_params = spec.make_gymnax()
        self.obs_shape = (spec.obs_dim,)

    @property
    def default_params(self):
        return self.real_params

    def _contract_action(self, action) -> jax.Array:
        struct_ = self.spec.action_struct()
        return jnp.reshape(jnp.asarray(action), struct_.shape).astype(struct_.dtype)

    def step_env(
        self,
        key: jax.Array,
        state: CWMEnvState,
        action: int | float | jax.Array,
        params,
    ) -> tuple[jax.Array, CWMEnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """One CWM step (no auto-reset, no time limit: `step` adds both)."""
        del key, params
        next_obs, reward, done = self.step_fn(state.obs, self._contract_action(action))
        next_obs = jnp.reshape(jnp.asarray(next_obs, jnp.float32), self.obs_shape)
        done = jnp.asarray(done, jnp.bool_).reshape(())
        reward = jnp.asarray(reward, jnp.float32).reshape(())
        next_state = CWMEnvState(time=state.time + 1, obs=next_obs, terminated=done)
        return (
            jax.lax.stop_gradient(next_obs),
            jax.lax.stop_gradient(next_state),
            reward,
            done,
            {"discount": self.discount(next_state, self.real_params)},
        )

    def reset_env(self, key: jax.Array, params) -> tuple[jax.Array, CWMEnvState]:
        """The real environment's reset, observation flattened."""
        obs, _ = self.real_env.reset_env(key, params)
        obs = self.spec.flatten_obs(obs)
        state = CWMEnvState(time=0, obs=obs, terminated=jnp.zeros((), jnp.bool_))
        return obs, state

    def get_obs(self, state: CWMEnvState, params=None, key=None) -> jax.Array:
        return state.obs

    def is_terminated(self, state: CWMEnvState, params) -> jax.Array:
        return state.terminated

    @property
    def name(self) -> str:
        return f"CWM-{self.real_env.name}"

    @property
    def num_actions(self) -> int:
        return self.real_env.num_actions

    def action_space(self, params=None):
        return self.real_env.action_space(self.real_params if params is None else params)

    def observation_space(self, params=None) -> spaces.Box:
        real = self.real_env.observation_space(self.real_params if params is None else params)
        low = jnp.broadcast_to(jnp.asarray(real.low, jnp.float32), real.shape).reshape(self.obs_shape)
        high = jnp.broadcast_to(jnp.asarray(real.high, jnp.float32), real.shape).reshape(self.obs_shape)
        return spaces.Box(low, high, self.obs_shape, jnp.float32)


__all__ = ["CWMEnv", "CWMEnvState"]
