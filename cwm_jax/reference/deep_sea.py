"""Hand-written reference CWM for DeepSea-bsuite (written by the cwm-jax authors, not by an LLM).

The state is the 8 x 8 grid flattened row by row: one 1 at the agent's cell,
or all zeros once the agent has left the bottom row.
"""

import jax.numpy as jnp

SIZE = 8
MOVE_COST = 0.01

# The action that moves right in cell (row, column), at index 8 * row + column.
RIGHT_ACTION = (
    0, 0, 1, 1, 0, 1, 1, 0,
    0, 1, 0, 1, 0, 0, 0, 0,
    0, 0, 0, 1, 1, 0, 0, 0,
    0, 0, 0, 0, 1, 1, 1, 0,
    1, 0, 1, 0, 0, 1, 1, 1,
    1, 1, 0, 0, 0, 1, 1, 1,
    0, 0, 0, 1, 1, 0, 0, 0,
    1, 0, 1, 1, 1, 1, 1, 0,
)


def step(state, action):
    flat = jnp.reshape(jnp.asarray(state, jnp.float32), (SIZE * SIZE,))
    index = jnp.argmax(flat)
    ended = jnp.sum(flat) == 0
    row = jnp.where(ended, SIZE, index // SIZE)
    column = jnp.where(ended, 0, index % SIZE)

    right_action = jnp.array(RIGHT_ACTION, jnp.int32)[jnp.clip(row, 0, SIZE - 1) * SIZE + column]
    moves_right = jnp.asarray(action, jnp.int32) == right_action

    next_column = jnp.where(moves_right, jnp.minimum(column + 1, SIZE - 1), jnp.maximum(column - 1, 0))
    next_row = row + 1

    treasure = jnp.where(moves_right & (column == SIZE - 1), 1.0, 0.0).astype(jnp.float32)
    reward = treasure - moves_right.astype(jnp.float32) * MOVE_COST / SIZE

    cells = jnp.arange(SIZE * SIZE)
    next_state = jnp.where((cells == next_row * SIZE + next_column) & (next_row < SIZE), 1.0, 0.0)
    done = next_row == SIZE
    return next_state.astype(jnp.float32), reward.astype(jnp.float32), done
