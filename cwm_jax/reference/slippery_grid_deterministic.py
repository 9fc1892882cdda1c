"""The best deterministic CWM of SlipperyGrid: every move as chosen, the ice never slides.

Its prediction is always the most likely outcome; it calls every slide
impossible. Written by the cwm-jax authors, for comparisons (docs/chance.md).
"""

import jax.numpy as jnp


def step(state, action):
    row = jnp.round(state[0]).astype(jnp.int32)
    col = jnp.round(state[1]).astype(jnp.int32)
    a = jnp.asarray(action, jnp.int32)
    row = jnp.clip(row + jnp.array([-1, 0, 1, 0])[a], 0, 3)
    col = jnp.clip(col + jnp.array([0, 1, 0, -1])[a], 0, 5)
    cliff = (row == 3) & (col >= 1) & (col <= 4)
    goal = (row == 3) & (col == 5)
    reward = jnp.where(cliff, -1.0, jnp.where(goal, 1.0, 0.0)).astype(jnp.float32)
    next_state = jnp.stack([jnp.where(cliff, 3, row), jnp.where(cliff, 0, col)]).astype(jnp.float32)
    return next_state, reward, goal
