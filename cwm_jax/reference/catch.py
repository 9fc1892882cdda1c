"""Hand-written reference CWM for Catch-bsuite (written by the cwm-jax authors, not by an LLM).

The state is the 10 x 5 grid flattened row by row: the ball is the 1 in rows
0-8, the paddle the 1 in row 9.
"""

import jax.numpy as jnp

ROWS = 10
COLUMNS = 5


def step(state, action):
    grid = jnp.reshape(jnp.asarray(state, jnp.float32), (ROWS, COLUMNS))
    top = grid[: ROWS - 1]
    # Exactly one cell of rows 0-8 holds the ball and one cell of row 9 the paddle.
    row_index = jnp.arange(ROWS - 1, dtype=jnp.float32)
    col_index = jnp.arange(COLUMNS, dtype=jnp.float32)
    ball_row = jnp.round(jnp.sum(jnp.sum(top, axis=1) * row_index)).astype(jnp.int32)
    ball_col = jnp.round(jnp.sum(jnp.sum(top, axis=0) * col_index)).astype(jnp.int32)
    paddle_col = jnp.round(jnp.sum(grid[ROWS - 1] * col_index)).astype(jnp.int32)

    move = jnp.asarray(action, jnp.int32) - 1
    paddle_col = jnp.clip(paddle_col + move, 0, COLUMNS - 1)
    ball_row = ball_row + 1

    ball = jnp.outer(jnp.arange(ROWS) == ball_row, jnp.arange(COLUMNS) == ball_col)
    paddle = jnp.outer(jnp.arange(ROWS) == ROWS - 1, jnp.arange(COLUMNS) == paddle_col)
    next_grid = jnp.maximum(ball.astype(jnp.float32), paddle.astype(jnp.float32))

    done = ball_row == ROWS - 1
    reward = jnp.where(done, jnp.where(ball_col == paddle_col, 1.0, -1.0), 0.0)
    return jnp.reshape(next_grid, (ROWS * COLUMNS,)), reward.astype(jnp.float32), done
