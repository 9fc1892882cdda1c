"""Toy gymnasium environments for the gymnasium source's tests, registered on import (`module:EnvId`)."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces


class Walk(gymnasium.Env):
    """A walker on a line that never ends by itself.

    ## Description
    Each step moves the walker by the action minus one and reports where it is.

    ## Arguments
    SECRET-ARGUMENTS-SECTION

    ## Version History
    * v0: SECRET-HISTORY
    """

    def __init__(self):
        self.observation_space = spaces.Dict({"position": spaces.Box(-np.inf, np.inf, (2,), np.float32),
                                              "steps": spaces.Discrete(100)})
        self.action_space = spaces.Discrete(3)

    def _obs(self):
        return {"position": np.array([self.x, -self.x], np.float32), "steps": self.t}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.integers(-3, 4)), 0
        return self._obs(), {}

    def step(self, action):
        self.x += int(action) - 1
        self.t = min(self.t + 1, 99)
        return self._obs(), float(self.x), False, False, {}


class Bits(Walk):
    def __init__(self):
        super().__init__()
        self.observation_space = spaces.MultiBinary(4)


class Lopsided(Walk):
    def __init__(self):
        super().__init__()
        self.action_space = spaces.Box(np.array([-1.0, -2.0], np.float32), np.array([1.0, 2.0], np.float32))


gymnasium.register("ToyWalk-v0", entry_point=Walk, max_episode_steps=5)
gymnasium.register("ToyBits-v0", entry_point=Bits)
gymnasium.register("ToyLopsided-v0", entry_point=Lopsided)
