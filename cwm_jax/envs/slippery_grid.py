"""SlipperyGrid: a cliff walk on ice, this project's stochastic grid world (gymnax API, JAX).

The agent walks from the bottom-left corner to the bottom-right one of a
4 x 6 grid past a cliff along the bottom edge. The ice makes moves random:
with probability 1 - 2 * SLIP the agent moves as chosen, with SLIP each it
slides to one of the two perpendicular directions (gymnasium's slippery
CliffWalking and FrozenLake have the same shape of chance, with other
numbers). Falling off the cliff costs -1 and puts the agent back on the start
cell; the goal pays +1 and ends the episode.

The dynamics are written here once, factored as chance CWMs are
(`cwm_jax.validate.chance`): `afterstate`, `chance_log_probs`, `outcome`; the
gymnax environment (`cwm_jax.envs.gymnax_slippery_grid`) draws the outcome
from them, and `TRUE_MODEL` is the true environment as a planner's model.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec, epsilon_greedy

__all__ = [
    "COLUMNS",
    "DESCRIPTION",
    "DOCS_DESCRIPTION",
    "EPSILON",
    "GOAL",
    "NUM_ACTIONS",
    "NUM_OUTCOMES",
    "ROWS",
    "SLIP",
    "SPEC",
    "START",
    "TRUE_MODEL",
    "afterstate",
    "chance_log_probs",
    "distance_value",
    "heuristic_policy",
    "outcome",
    "state_from_obs",
]

ROWS = 4
COLUMNS = 6
START = (3, 0)
GOAL = (3, 5)
SLIP = 0.2  # probability of sliding to each perpendicular direction
NUM_ACTIONS = 4
NUM_OUTCOMES = 3  # moved as chosen, slid counter-clockwise, slid clockwise
EPSILON = 0.1
MAX_STEPS = 50

# (row, column) change of actions 0 up, 1 right, 2 down, 3 left.
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
_TURNS = (0, -1, 1)  # outcome c moves in direction (action + _TURNS[c]) % 4

DESCRIPTION = """\
SlipperyGrid: a walk on ice past a cliff. The grid has 4 rows and 6 columns;
row 0 is the top row, column 0 the left column.

Observation (state): float32 vector of 2 elements, [row, column] of the
agent (whole numbers).

Actions, an integer: 0 move up, 1 move right, 2 move down, 3 move left.

Dynamics: the ice is slippery. The agent does not always move in the
direction it chose: sometimes it slides one cell in one of the two directions
perpendicular to the chosen one instead (never backwards). Which of the three
happens is random. A move that would leave the grid leaves the agent where it
is in that direction (row and column are clipped to the grid).

Cliff: the cells of the bottom row (row 3) in columns 1 to 4. Entering a
cliff cell gives reward -1 and puts the agent back on the start cell
(row 3, column 0); the episode goes on.

Goal: the cell in row 3, column 5. Entering it gives reward +1 and ends the
episode (done). Every other step gives reward 0.

Starting state: row 3, column 0 (the bottom-left corner).
"""

DOCS_DESCRIPTION = """\
SlipperyGrid. A 4 x 6 grid; the agent walks on slippery ice from the
bottom-left cell to the bottom-right cell, past a cliff along the bottom row.

Observation: [row, column] of the agent (float32, whole numbers).

Actions: 0 up, 1 right, 2 down, 3 left. The ice is slippery: the agent may
slide perpendicular to the chosen direction; moves are random.

Reward: -1 for stepping into the cliff (the agent returns to the start),
+1 for reaching the goal, 0 otherwise.

Starting state: the bottom-left cell.

Termination: the agent reaches the goal (bottom-right cell).
"""


def _int(x) -> jax.Array:
    return jnp.round(jnp.asarray(x, jnp.float32)).astype(jnp.int32)


def afterstate(state: jax.Array, action: jax.Array) -> jax.Array:
    """float32 [3]: (row, column, action), what is decided before the ice acts."""
    return jnp.stack([_int(state[0]), _int(state[1]), _int(action)]).astype(jnp.float32)


def chance_log_probs(after: jax.Array) -> jax.Array:
    """float32 [3]: log-probabilities of moving as chosen, sliding counter-clockwise, sliding clockwise."""
    del after
    return jnp.log(jnp.array([1.0 - 2.0 * SLIP, SLIP, SLIP], jnp.float32))


def outcome(after: jax.Array, chance: jax.Array):
    """(next_state float32 [2], reward float32 [], done bool []) of outcome `chance` at an afterstate."""
    row, col, action = _int(after[0]), _int(after[1]), _int(after[2])
    direction = (action + jnp.asarray(_TURNS, jnp.int32)[chance]) % NUM_ACTIONS
    move = jnp.asarray(_MOVES, jnp.int32)[direction]
    row = jnp.clip(row + move[0], 0, ROWS - 1)
    col = jnp.clip(col + move[1], 0, COLUMNS - 1)
    cliff = (row == ROWS - 1) & (col >= 1) & (col <= COLUMNS - 2)
    goal = (row == GOAL[0]) & (col == GOAL[1])
    reward = jnp.where(cliff, -1.0, jnp.where(goal, 1.0, 0.0)).astype(jnp.float32)
    next_state = jnp.where(cliff, jnp.asarray(START, jnp.float32), jnp.stack([row, col]).astype(jnp.float32))
    return next_state, reward, goal


# The true dynamics as a chance model: `cwm_jax.validate.chance.ChanceModel(*TRUE_MODEL)`.
TRUE_MODEL = (afterstate, chance_log_probs, outcome, NUM_OUTCOMES)


def state_from_obs(obs: jax.Array):
    from cwm_jax.envs.gymnax_slippery_grid import EnvState

    return EnvState(row=_int(obs[0]), col=_int(obs[1]), time=jnp.int32(0))


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """The safe path (up to row 1, right along it, down the last column); EPSILON random actions."""
    row, col = _int(obs[0]), _int(obs[1])
    greedy = jnp.where(col == COLUMNS - 1, 2, jnp.where(row >= 2, 0, 1))
    return epsilon_greedy(key, greedy, NUM_ACTIONS, EPSILON)


def distance_value(state: jax.Array, discount: float = 0.99) -> jax.Array:
    """float32 []: discount**(steps to the goal on the shortest path around the cliff, ignoring the ice).

    A leaf value that knows the map but not the chance: the same for every
    model a planner is given (`experiments/chance.py`).
    """
    row, col = _int(state[0]), _int(state[1])
    walk = jnp.minimum(row, ROWS - 2)
    steps = jnp.where(col == GOAL[1], GOAL[0] - row, (row - walk) + (GOAL[1] - col) + (GOAL[0] - walk))
    return jnp.asarray(discount, jnp.float32) ** steps.astype(jnp.float32)


@functools.cache
def _make_env():
    from cwm_jax.envs.gymnax_slippery_grid import make

    return make(model=TRUE_MODEL, shape=(ROWS, COLUMNS), start=START, goal=GOAL, num_actions=NUM_ACTIONS,
                max_steps=MAX_STEPS)


SPEC = EnvSpec(
    name="SlipperyGrid",
    gymnax_id="SlipperyGrid-misc",
    description=DESCRIPTION,
    obs_shape=(2,),
    num_actions=NUM_ACTIONS,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="slippery_grid",
    docs_description=DOCS_DESCRIPTION,
    stochastic=True,
    make_env=_make_env,
    chance_oracle=lambda: TRUE_MODEL,
)
