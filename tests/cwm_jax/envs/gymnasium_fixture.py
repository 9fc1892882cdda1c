"""Tiny gymnasium environments for the gymnasium-source tests, made as `tests.cwm_jax.envs.gymnasium_fixture:<Id>`."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

__all__ = ["DictEnv", "MultiBinaryEnv"]


class DictEnv(gymnasium.Env):
    """A counter with a Dict observation.

    ## Description
    The counter moves by the action, see [the docs](https://example.org/docs).

    ## Arguments
    None worth a word.

    ## Version History
    * v0: the first.
    """

    observation_space = spaces.Dict({"position": spaces.Box(-10, 10, (2,), np.float32),
                                     "count": spaces.Discrete(5, start=1)})
    action_space = spaces.Discrete(3, start=-1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = np.zeros(3)  # position x, y, count - 1: the flattened observation's order differs
        return self._obs(), {}

    def _obs(self):
        return {"position": self.state[:2].astype(np.float32), "count": int(self.state[2]) + 1}

    def step(self, action):
        self.state = self.state + np.array([action, 2 * action, 1.0])
        return self._obs(), float(action), bool(self.state[2] >= 4), False, {}


class MultiBinaryEnv(DictEnv):
    """An observation space the contract cannot hold."""

    observation_space = spaces.MultiBinary(3)


gymnasium.register("Dict-v0", entry_point=DictEnv, max_episode_steps=20)
gymnasium.register("MultiBinary-v0", entry_point=MultiBinaryEnv, max_episode_steps=20)
