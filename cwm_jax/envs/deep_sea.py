"""DeepSea-bsuite (gymnax bsuite)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec, epsilon_greedy

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.bsuite.deep_sea import EnvState

__all__ = [
    "ACTION_MAPPING",
    "DESCRIPTION",
    "EPSILON",
    "NUM_ACTIONS",
    "SIZE",
    "SPEC",
    "heuristic_policy",
    "position",
    "state_from_obs",
]

SIZE = 8

# Which action moves right in each cell: ACTION_MAPPING[row][column]. gymnax
# draws this 8 x 8 bit mask once, from jax.random.key(0), when the env is
# built (deterministic=True, randomize_actions=True, sample_action_map=False).
ACTION_MAPPING = (
    (0, 0, 1, 1, 0, 1, 1, 0),
    (0, 1, 0, 1, 0, 0, 0, 0),
    (0, 0, 0, 1, 1, 0, 0, 0),
    (0, 0, 0, 0, 1, 1, 1, 0),
    (1, 0, 1, 0, 0, 1, 1, 1),
    (1, 1, 0, 0, 0, 1, 1, 1),
    (0, 0, 0, 1, 1, 0, 0, 0),
    (1, 0, 1, 1, 1, 1, 1, 0),
)


def _mapping_table() -> str:
    header = "            column 0 1 2 3 4 5 6 7"
    rows = [f"  row {r}            " + " ".join(str(b) for b in bits) for r, bits in enumerate(ACTION_MAPPING)]
    return "\n".join([header, *rows])


DESCRIPTION = f"""\
DeepSea, from DeepMind's behaviour suite (bsuite), deterministic version. The
agent descends an 8 x 8 grid (8 rows, 8 columns), one row per step, starting
in the top-left corner, and in every step moves one column left or right. A
treasure waits at the bottom-right, reachable only by moving right in every
step; moving right costs a little.

Observation (state): the 8 x 8 grid flattened row by row into a float32
vector of 64 elements; element 8 * row + column is grid cell (row, column).
Row 0 is the top row, column 0 the left column. Exactly one cell is 1.0 (the
agent's position) and all others are 0.0. Once the agent has left the bottom
row (the episode is over) the observation is all zeros.

Actions, an integer, 0 or 1. Which of the two moves the agent right depends
on the cell the agent is in (before the move); the other action moves it
left. The table below is fixed (the same in every episode): the entry for
(row, column) is the action that moves right from that cell.

{_mapping_table()}

Dynamics: in every step the agent goes down one row. If the action is the
"right" action of its current cell it also moves one column right (it stays
in column 7 if it is already there); otherwise it moves one column left (it
stays in column 0 if it is already there). Nothing is random.

Reward: every "right" move costs 0.01 / 8 = 0.00125 (reward -0.00125). A
"right" move made from column 7 additionally earns +1 (the treasure), so that
step's reward is 1 - 0.00125. A "left" move gives reward 0.

Starting state: the agent in row 0, column 0.

Termination (done): after a step, the agent has left the bottom row, i.e.
the step was taken from row 7. That happens in the 8th step of every
episode, and the observation after it is all zeros.
"""

NUM_ACTIONS = 2
EPSILON = 0.1


def position(obs: jax.Array):
    """(row, column) of the agent; row SIZE (and column 0) for the all-zero end obs."""
    flat = jnp.reshape(jnp.asarray(obs, jnp.float32), (SIZE * SIZE,))
    index = jnp.argmax(flat)
    ended = jnp.sum(flat) == 0
    row = jnp.where(ended, SIZE, index // SIZE)
    column = jnp.where(ended, 0, index % SIZE)
    return row.astype(jnp.int32), column.astype(jnp.int32)


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.bsuite.deep_sea import EnvState

    row, column = position(obs)
    return EnvState(
        row=row,
        column=column,
        bad_episode=jnp.bool_(False),
        total_bad_episodes=jnp.int32(0),
        denoised_return=jnp.int32(0),
        optimal_return=jnp.float32(1.0 - 0.01),
        action_mapping=jnp.asarray(ACTION_MAPPING, jnp.int32),
        time=jnp.int32(0),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Always take the action that moves right (towards the treasure); EPSILON random actions."""
    row, column = position(obs)
    mapping = jnp.asarray(ACTION_MAPPING, jnp.int32)
    greedy = mapping[jnp.clip(row, 0, SIZE - 1), column]
    return epsilon_greedy(key, greedy, NUM_ACTIONS, EPSILON)


SPEC = EnvSpec(
    name="DeepSea",
    gymnax_id="DeepSea-bsuite",
    description=DESCRIPTION,
    obs_shape=(SIZE, SIZE),
    num_actions=NUM_ACTIONS,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="deep_sea",
)
