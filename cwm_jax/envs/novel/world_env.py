"""A generated world as a gymnax `Environment` whose state is its observation.

A generated world (but the chance family, `ChanceNovelEnv`) is deterministic
given its observation by construction:
the gymnax state holds the observation (and the step count) and nothing
else, `step_env` never reads its key, and `reset_env` is the only random
part. So the oracle (`EnvSpec.oracle_step`) is the world's own step.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

__all__ = ["ChanceNovelEnv", "NovelEnv", "NovelParams", "NovelState", "World"]


class World(Protocol):
    """What a family's world provides (`physics.PhysicsWorld`, `grid.GridWorld`)."""

    def step(self, state: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]: ...

    def reset(self, key: jax.Array) -> jax.Array: ...


@struct.dataclass
class NovelState(environment.EnvState):
    """time: steps since reset (int32 []); obs: float32 [obs_dim], the whole state."""

    obs: jax.Array


@struct.dataclass
class NovelParams(environment.EnvParams):
    max_steps_in_episode: int = 200


class NovelEnv(environment.Environment[NovelState, NovelParams]):
    """gymnax API over a world: `obs_dim`, and `num_actions` (discrete) or `action_dim` (continuous)."""

    def __init__(self, world: World, name: str, *, obs_dim: int, num_actions: int | None = None,
                 action_dim: int | None = None, max_steps: int = 200):
        super().__init__()
        self.world, self._name, self.obs_dim = world, name, obs_dim
        self._num_actions, self.action_dim, self.max_steps = num_actions, action_dim, max_steps

    @property
    def default_params(self) -> NovelParams:
        return NovelParams(max_steps_in_episode=self.max_steps)

    def step_env(self, key: jax.Array, state: NovelState, action: Any, params: NovelParams):
        del key, params  # deterministic: the key is never read
        obs, reward, done = self.world.step(state.obs, action)
        return obs, NovelState(time=state.time + 1, obs=obs), reward, done, {"discount": jnp.where(done, 0.0, 1.0)}

    def reset_env(self, key: jax.Array, params: NovelParams) -> tuple[jax.Array, NovelState]:
        obs = self.world.reset(key)
        return obs, NovelState(time=0, obs=obs)

    def get_obs(self, state: NovelState, params=None, key=None) -> jax.Array:
        return state.obs

    def is_terminated(self, state: NovelState, params: NovelParams) -> jax.Array:
        return jnp.zeros((), jnp.bool_)  # termination comes from `step_env` only

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self._num_actions if self._num_actions is not None else self.action_dim

    def action_space(self, params=None):
        if self._num_actions is not None:
            return spaces.Discrete(self._num_actions)
        return spaces.Box(-1.0, 1.0, (self.action_dim,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim,), jnp.float32)


class ChanceNovelEnv(NovelEnv):
    """`NovelEnv` over a world with chance (`chance_grid.ChanceGridWorld`): its step draws from the key."""

    def step_env(self, key: jax.Array, state: NovelState, action: Any, params: NovelParams):
        del params
        obs, reward, done = self.world.step(key, state.obs, action)
        return obs, NovelState(time=state.time + 1, obs=obs), reward, done, {"discount": jnp.where(done, 0.0, 1.0)}
