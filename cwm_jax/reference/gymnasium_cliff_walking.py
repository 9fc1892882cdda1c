"""Hand-written reference CWM for gymnasium's CliffWalking-v1 (written by the cwm-jax authors, not by an LLM).

The state is the observation: the cell index row * 12 + col as float32 [1].
"""

import jax.numpy as jnp

ROWS = 4
COLS = 12
START = 36
GOAL = 47
ROW_MOVES = jnp.array([-1, 0, 1, 0])  # up, right, down, left
COL_MOVES = jnp.array([0, 1, 0, -1])


def step(state, action):
    cell = jnp.round(state[0]).astype(jnp.int32)
    row = jnp.clip(cell // COLS + ROW_MOVES[action], 0, ROWS - 1)
    col = jnp.clip(cell % COLS + COL_MOVES[action], 0, COLS - 1)
    cliff = (row == ROWS - 1) & (col >= 1) & (col <= COLS - 2)
    next_cell = jnp.where(cliff, START, row * COLS + col)
    reward = jnp.where(cliff, -100.0, -1.0)
    done = next_cell == GOAL
    return jnp.stack([next_cell.astype(jnp.float32)]), reward.astype(jnp.float32), done
