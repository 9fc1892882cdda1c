"""Hand-written reference CWM for SlipperyGrid, with chance (written by the cwm-jax authors, not by an LLM).

State: [row, column]. The afterstate is [row, column, action]; the ice then
moves the agent as chosen (outcome 0) or slides it counter-clockwise (1) or
clockwise (2) of the chosen direction.
"""

import jax.numpy as jnp

ROWS = 4
COLUMNS = 6
SLIP = 0.2


def afterstate(state, action):
    return jnp.array([state[0], state[1], jnp.asarray(action, jnp.float32)], dtype=jnp.float32)


def chance_log_probs(afterstate):
    return jnp.log(jnp.array([1.0 - 2.0 * SLIP, SLIP, SLIP], dtype=jnp.float32))


def outcome(afterstate, chance):
    row = jnp.round(afterstate[0]).astype(jnp.int32)
    col = jnp.round(afterstate[1]).astype(jnp.int32)
    action = jnp.round(afterstate[2]).astype(jnp.int32)
    turn = jnp.array([0, -1, 1], dtype=jnp.int32)[chance]
    direction = (action + turn) % 4
    d_row = jnp.array([-1, 0, 1, 0], dtype=jnp.int32)[direction]
    d_col = jnp.array([0, 1, 0, -1], dtype=jnp.int32)[direction]
    row = jnp.clip(row + d_row, 0, ROWS - 1)
    col = jnp.clip(col + d_col, 0, COLUMNS - 1)
    cliff = (row == ROWS - 1) & (col >= 1) & (col <= COLUMNS - 2)
    goal = (row == ROWS - 1) & (col == COLUMNS - 1)
    reward = jnp.where(cliff, -1.0, jnp.where(goal, 1.0, 0.0)).astype(jnp.float32)
    row = jnp.where(cliff, ROWS - 1, row)
    col = jnp.where(cliff, 0, col)
    next_state = jnp.stack([row, col]).astype(jnp.float32)
    return next_state, reward, goal
