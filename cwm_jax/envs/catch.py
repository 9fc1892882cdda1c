"""Catch-bsuite (gymnax bsuite)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec, epsilon_greedy

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.bsuite.catch import EnvState

__all__ = [
    "COLUMNS",
    "DESCRIPTION",
    "EPSILON",
    "NUM_ACTIONS",
    "ROWS",
    "SPEC",
    "heuristic_policy",
    "positions",
    "state_from_obs",
]

ROWS = 10
COLUMNS = 5

DESCRIPTION = """\
Catch, from DeepMind's behaviour suite (bsuite). A ball falls from the top of
a 10 x 5 grid (10 rows, 5 columns) and the agent moves a paddle along the
bottom row to catch it.

Observation (state): the 10 x 5 grid flattened row by row into a float32
vector of 50 elements; element 5 * row + column is grid cell (row, column).
Row 0 is the top row and row 9 the bottom row; column 0 is the left column.
A cell is 1.0 if the ball or the paddle is in it, and 0.0 otherwise, so
exactly two cells are 1.0, except when the ball is in the bottom row on the
paddle's cell. The paddle is always in the bottom row (row 9); the ball is
the 1.0 in rows 0 to 8.

Actions, an integer:
  0  move the paddle one column to the left
  1  keep the paddle where it is
  2  move the paddle one column to the right
The paddle stays inside the grid: moving left in column 0, or right in
column 4, leaves it where it is.

Dynamics: in every step the paddle moves according to the action and the
ball falls by exactly one row, staying in its column. Nothing is random
during an episode.

Reward: 0 while the ball is above the bottom row. In the step where the ball
reaches the bottom row (row 9): +1 if the ball lands in the paddle's column
(after the paddle's move of that step), -1 otherwise.

Starting state: the ball in row 0, in a column drawn uniformly from the 5
columns; the paddle in row 9, column 2 (the middle).

Termination (done): after a step, the ball is in the bottom row (row 9).
That happens in the 9th step of every episode.
"""

NUM_ACTIONS = 3
EPSILON = 0.1


def positions(obs: jax.Array):
    """(ball_row, ball_col, paddle_col) read from a flat grid.

    The ball is the 1 in rows 0-8; the paddle is the 1 in row 9. When no cell
    of rows 0-8 is set, the ball is in row 9: on the paddle's cell if that
    row has one 1, otherwise in the other set cell of row 9 (which of the two
    is the paddle is then ambiguous; the episode is over in that state).
    """
    grid = jnp.reshape(jnp.asarray(obs, jnp.float32), (ROWS, COLUMNS))
    top = grid[: ROWS - 1]
    bottom = grid[ROWS - 1]
    has_ball = jnp.sum(top) > 0
    ball_row_top = jnp.argmax(jnp.sum(top, axis=1))
    ball_col_top = jnp.argmax(top[ball_row_top])
    paddle_col = jnp.argmax(bottom)
    last_in_bottom = COLUMNS - 1 - jnp.argmax(bottom[::-1])
    ball_row = jnp.where(has_ball, ball_row_top, ROWS - 1)
    ball_col = jnp.where(has_ball, ball_col_top, last_in_bottom)
    return ball_row.astype(jnp.int32), ball_col.astype(jnp.int32), paddle_col.astype(jnp.int32)


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.bsuite.catch import EnvState

    ball_row, ball_col, paddle_col = positions(obs)
    return EnvState(
        ball_x=ball_col,
        ball_y=ball_row,
        paddle_x=paddle_col,
        paddle_y=jnp.int32(ROWS - 1),
        prev_done=jnp.bool_(False),
        time=jnp.int32(0),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Move the paddle towards the ball's column; EPSILON random actions."""
    _, ball_col, paddle_col = positions(obs)
    greedy = (jnp.sign(ball_col - paddle_col) + 1).astype(jnp.int32)
    return epsilon_greedy(key, greedy, NUM_ACTIONS, EPSILON)


SPEC = EnvSpec(
    name="Catch",
    gymnax_id="Catch-bsuite",
    description=DESCRIPTION,
    obs_shape=(ROWS, COLUMNS),
    num_actions=NUM_ACTIONS,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="catch",
)
