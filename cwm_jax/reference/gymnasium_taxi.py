"""Hand-written reference CWM for gymnasium's Taxi-v4 (written by the cwm-jax authors, not by an LLM).

The state is the observation: ((taxi_row * 5 + taxi_col) * 5 + passenger) * 4 + destination
as float32 [1]; passenger 0-3 waits at R, G, Y, B, 4 rides in the taxi.
Actions: 0 south, 1 north, 2 east, 3 west, 4 pickup, 5 dropoff.
"""

import jax.numpy as jnp

SIZE = 5
STOP_ROWS = jnp.array([0, 0, 4, 4])  # R, G, Y, B
STOP_COLS = jnp.array([0, 4, 0, 3])
# EAST_OPEN[row, col]: no wall between (row, col) and (row, col + 1).
EAST_OPEN = jnp.array([
    [1, 0, 1, 1, 0],
    [1, 0, 1, 1, 0],
    [1, 1, 1, 1, 0],
    [0, 1, 0, 1, 0],
    [0, 1, 0, 1, 0],
])


def step(state, action):
    code = jnp.round(state[0]).astype(jnp.int32)
    destination = code % 4
    passenger = (code // 4) % 5
    col = (code // 20) % 5
    row = code // 100
    west_open = (col > 0) & (EAST_OPEN[row, jnp.maximum(col - 1, 0)] == 1)
    new_row = jnp.where(action == 0, jnp.minimum(row + 1, SIZE - 1), jnp.where(action == 1, jnp.maximum(row - 1, 0), row))
    new_col = jnp.where((action == 2) & (EAST_OPEN[row, col] == 1), col + 1,
                        jnp.where((action == 3) & west_open, col - 1, col))
    at_stop = (STOP_ROWS == row) & (STOP_COLS == col)  # [4]
    stop = jnp.argmax(at_stop)
    on_a_stop = jnp.any(at_stop)
    riding = passenger == 4
    can_pick = (~riding) & (STOP_ROWS[jnp.minimum(passenger, 3)] == row) & (STOP_COLS[jnp.minimum(passenger, 3)] == col)
    delivered = riding & on_a_stop & (stop == destination)
    can_drop = riding & on_a_stop
    new_passenger = jnp.where((action == 4) & can_pick, 4, jnp.where((action == 5) & can_drop, stop, passenger))
    reward = jnp.where(action == 4, jnp.where(can_pick, -1.0, -10.0),
                       jnp.where(action == 5, jnp.where(delivered, 20.0, jnp.where(can_drop, -1.0, -10.0)), -1.0))
    done = (action == 5) & delivered
    next_code = ((new_row * SIZE + new_col) * 5 + new_passenger) * 4 + destination
    return jnp.stack([next_code.astype(jnp.float32)]), reward.astype(jnp.float32), done
