"""Hand-written reference CWM for gymnasium's CliffWalking-v1 (written by the cwm-jax authors, not by an LLM).

The state is gymnasium's Discrete(48) observation as float32 [1]: row * 12 + column on a 4 x 12 grid.
"""

import jax.numpy as jnp

ROWS = 4
COLUMNS = 12
START = 36
GOAL = 47
# Row and column moves of the actions: 0 up, 1 right, 2 down, 3 left.
ROW_MOVES = jnp.array([-1, 0, 1, 0])
COLUMN_MOVES = jnp.array([0, 1, 0, -1])


def step(state, action):
    position = jnp.round(jnp.asarray(state, jnp.float32)[0]).astype(jnp.int32)
    row = jnp.clip(position // COLUMNS + ROW_MOVES[action], 0, ROWS - 1)
    column = jnp.clip(position % COLUMNS + COLUMN_MOVES[action], 0, COLUMNS - 1)
    cliff = (row == ROWS - 1) & (column >= 1) & (column <= COLUMNS - 2)
    moved = row * COLUMNS + column
    next_position = jnp.where(cliff, START, moved)
    reward = jnp.where(cliff, -100.0, -1.0)
    done = (~cliff) & (moved == GOAL)
    return next_position.astype(jnp.float32).reshape(1), reward.astype(jnp.float32), done
