"""SlipperyGrid as a gymnax `Environment`, registered with gymnax as "SlipperyGrid-misc".

Kept apart from `cwm_jax.envs.slippery_grid` (the spec and the dynamics,
which it passes in): importing gymnax costs about 2 s, paid only when the
environment runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

__all__ = ["ENV_ID", "EnvParams", "EnvState", "SlipperyGrid", "make"]

ENV_ID = "SlipperyGrid-misc"


@struct.dataclass
class EnvState(environment.EnvState):
    """The agent's cell."""

    row: jax.Array
    col: jax.Array


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 50


class SlipperyGrid(environment.Environment[EnvState, EnvParams]):
    """A grid walk whose moves are drawn from a chance model; observation float32 [2] = (row, column).

    Args:
      model: (afterstate, chance_log_probs, outcome, C) on observations, as
        `cwm_jax.envs.slippery_grid.TRUE_MODEL`; `step_env` draws the outcome.
      shape: (rows, columns).
      start, goal: (row, column) cells.
      num_actions: size of the action space.
      max_steps: the time limit.
    """

    def __init__(self, *, model: tuple[Callable, Callable, Callable, int], shape: tuple[int, int],
                 start: tuple[int, int], goal: tuple[int, int], num_actions: int, max_steps: int):
        super().__init__()
        self.afterstate, self.chance_log_probs, self.outcome, _ = model
        self.shape, self.start, self.goal = shape, start, goal
        self._num_actions, self.max_steps = num_actions, max_steps

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.max_steps)

    @property
    def name(self) -> str:
        return ENV_ID

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def step_env(self, key: jax.Array, state: EnvState, action, params: EnvParams):
        after = self.afterstate(self.observe(key, state, action, params), action)
        chance = jax.random.categorical(key, self.chance_log_probs(after)).astype(jnp.int32)
        obs, reward, done = self.outcome(after, chance)
        next_state = EnvState(row=obs[0].astype(jnp.int32), col=obs[1].astype(jnp.int32), time=state.time + 1)
        return obs, next_state, reward, done, {"chance": chance}

    def reset_env(self, key: jax.Array, params: EnvParams):
        state = EnvState(row=jnp.int32(self.start[0]), col=jnp.int32(self.start[1]), time=jnp.int32(0))
        return self.observe(key, state, None, params), state

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        del params
        return (state.row == self.goal[0]) & (state.col == self.goal[1])

    def observe(self, key, state: EnvState, action, params) -> jax.Array:
        del key, action, params
        return jnp.stack([state.row, state.col]).astype(jnp.float32)

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        del params
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        del params
        return spaces.Box(0.0, float(max(self.shape) - 1), (2,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict({"row": spaces.Discrete(self.shape[0]), "col": spaces.Discrete(self.shape[1]),
                            "time": spaces.Discrete(params.max_steps_in_episode + 1)})


def make(**kwargs) -> tuple[Any, EnvParams]:
    """(env, params) of `SlipperyGrid(**kwargs)`, registered with gymnax on first use (`gymnax.make(ENV_ID)`)."""
    if ENV_ID not in gymnax.registered_envs:
        gymnax.register(ENV_ID, lambda: SlipperyGrid(**kwargs))
    return gymnax.make(ENV_ID)
