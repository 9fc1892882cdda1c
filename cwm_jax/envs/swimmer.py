"""Swimmer-misc (gymnax misc): a point mass swimming to a goal among urchins.

Not the MuJoCo Swimmer of Gymnasium: a point-mass toy in the plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.misc.swimmer import EnvState

__all__ = ["DESCRIPTION", "NOISE_STD", "NUM_URCHINS", "SPEC", "heuristic_policy", "state_from_obs"]

NUM_URCHINS = 5

DESCRIPTION = """\
A swimmer, a point mass in the plane, must reach a goal point while keeping
away from 5 sea urchins, which stay where they are. (This is gymnax's simple
"Swimmer-misc", not the MuJoCo Swimmer of Gymnasium: there is no body, no
drag and no collision; the urchins only matter for the reward.)

Observation (state), a float32 vector of 16 elements:
  0-9    the x and y coordinates of the 5 urchins, as (x, y) pairs:
         element 2 i is the x and element 2 i + 1 the y of urchin i
  10, 11 x and y position of the swimmer
  12, 13 x and y velocity of the swimmer, in units per second
  14, 15 x and y coordinates of the goal
The urchins and the goal do not move during an episode.

Action: a float32 vector of 2 elements in [-1, 1], the x and y acceleration
of the swimmer in units per second squared (it is not clipped).

Dynamics: a double integrator in each axis, with no drag and no speed
limit. Time advances by 0.05 s per step with one semi-implicit Euler step:
the velocity changes by the action times the time step, then the position
advances by the NEW velocity times the time step. Nothing else changes.

Reward: computed from the position AFTER the step. A goal term, the
exponential of minus half the squared distance from the swimmer to the goal,
multiplied, for every urchin, by one minus the exponential of minus 30 times
the squared distance from the swimmer to that urchin. So the reward is at
most 1, near 1 on the goal when no urchin is near, and near 0 whenever the
swimmer is close to any urchin (within about 0.2 units) or far from the
goal.

Starting state: the urchins, the swimmer's position and the goal each drawn
uniformly from the square [-1, 1] x [-1, 1]; the velocity is 0.

Termination (done): never; done is always False. Episodes are cut after 500
steps, but that time limit is not part of the dynamics.
"""

NOISE_STD = 0.2


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.misc.swimmer import EnvState

    obs = jnp.asarray(obs, jnp.float32)
    return EnvState(
        urchin_xys=jnp.reshape(obs[0 : 2 * NUM_URCHINS], (NUM_URCHINS, 2)),
        xy=obs[10:12],
        xy_vel=obs[12:14],
        goal_xy=obs[14:16],
        time=jnp.int32(0),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """PD control towards the goal with a short-range push away from urchins."""
    urchins = jnp.reshape(obs[0 : 2 * NUM_URCHINS], (NUM_URCHINS, 2))
    xy, vel, goal = obs[10:12], obs[12:14], obs[14:16]
    away = xy - urchins
    dist2 = jnp.sum(away**2, axis=1, keepdims=True)
    repel = jnp.sum(away * jnp.exp(-dist2 / 0.02), axis=0)
    u = 2.0 * (goal - xy) - 1.5 * vel + 3.0 * repel
    noise = NOISE_STD * jax.random.normal(key, (2,), jnp.float32)
    return jnp.clip(u + noise, -1.0, 1.0).astype(jnp.float32)


SPEC = EnvSpec(
    name="Swimmer",
    gymnax_id="Swimmer-misc",
    description=DESCRIPTION,
    obs_shape=(16,),
    action_dim=2,
    action_low=-1.0,
    action_high=1.0,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="swimmer",
)
