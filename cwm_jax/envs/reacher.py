"""Reacher-misc (gymnax misc): a planar two-link arm reaching for a goal.

Not the MuJoCo Reacher of Gymnasium: a kinematic toy with unit links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.misc.reacher import EnvState

__all__ = ["DESCRIPTION", "NOISE_STD", "SPEC", "heuristic_policy", "state_from_obs"]

DESCRIPTION = """\
A planar arm of two links, each 1.0 unit long, is fixed at one end to the
origin of the plane. Both joints are actuated. The goal is to bring the tip
of the arm to a goal point and keep it there. (This is gymnax's simple
"Reacher-misc", not the MuJoCo Reacher of Gymnasium: there are no masses,
no gravity, no friction and no joint limits.)

Observation (state), a float32 vector of 8 elements:
  0  cosine of angle 1
  1  cosine of angle 2
  2  sine of angle 1
  3  sine of angle 2
  4  angular velocity of angle 1, in radians per second
  5  angular velocity of angle 2, in radians per second
  6  x coordinate of the goal
  7  y coordinate of the goal
Both angles are ABSOLUTE: each is the direction of its link measured
counter-clockwise from the positive x axis (angle 2 is not relative to
link 1). The first link goes from the origin in the direction of angle 1;
the second link starts at the end of the first and points in the direction
of angle 2. The goal does not move during an episode.

Action: a float32 vector of 2 elements in [-1, 1]: the angular
accelerations of angle 1 and angle 2, in radians per second squared (they
are not clipped).

Dynamics: the two joints are independent double integrators. Time advances
by 0.05 s per step with one semi-implicit Euler step: each angular velocity
changes by the action times the time step, then each angle advances by its
NEW angular velocity times the time step. The angular velocities are not
limited.

Reward: computed from the arm AFTER the step: the exponential of minus the
squared distance between the tip of the arm and the goal. It is 1 when the
tip is on the goal and falls towards 0 as it moves away.

Starting state: both angles uniform in [-pi, pi], both angular velocities
uniform in [-1, 1], and the goal uniform in the square [-2, 2] x [-2, 2]
(some goals are out of reach of the arm).

Termination (done): never; done is always False. Episodes are cut after 100
steps, but that time limit is not part of the dynamics.
"""

NOISE_STD = 0.2


def state_from_obs(obs: jax.Array) -> EnvState:
    """The angles come back as arctan2(sin, cos), which lies in [-pi, pi]."""
    from gymnax.environments.misc.reacher import EnvState

    obs = jnp.asarray(obs, jnp.float32)
    return EnvState(
        angles=jnp.arctan2(obs[2:4], obs[0:2]),
        angle_vels=obs[4:6],
        goal_xy=obs[6:8],
        time=jnp.float32(0.0),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Jacobian-transpose PD control of the tip towards the goal, plus noise."""
    cos_a, sin_a, vel, goal = obs[0:2], obs[2:4], obs[4:6], obs[6:8]
    tip = jnp.stack([jnp.sum(cos_a), jnp.sum(sin_a)])
    error = goal - tip
    # d(tip)/d(angle_i) = (-sin a_i, cos a_i)
    push = -sin_a * error[0] + cos_a * error[1]
    u = 4.0 * push - 2.0 * vel
    noise = NOISE_STD * jax.random.normal(key, (2,), jnp.float32)
    return jnp.clip(u + noise, -1.0, 1.0).astype(jnp.float32)


SPEC = EnvSpec(
    name="Reacher",
    gymnax_id="Reacher-misc",
    description=DESCRIPTION,
    obs_shape=(8,),
    action_dim=2,
    action_low=-1.0,
    action_high=1.0,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="reacher",
)
