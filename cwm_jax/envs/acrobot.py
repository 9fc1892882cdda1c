"""Acrobot-v1 (gymnax classic control)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec, epsilon_greedy

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.classic_control.acrobot import EnvState

__all__ = ["DESCRIPTION", "EPSILON", "NUM_ACTIONS", "SPEC", "heuristic_policy", "state_from_obs"]

DESCRIPTION = """\
The Acrobot is a two-link pendulum: two links connected in a chain, with one
end of the chain fixed to a pivot. The joint between the two links is
actuated; the joint at the pivot is not. The links hang downwards at the
start, and the goal is to apply torques on the actuated joint to swing the
free end of the chain above a given height.

Observation (state), a float32 vector of 6 elements:
  0  cosine of theta1
  1  sine of theta1
  2  cosine of theta2
  3  sine of theta2
  4  angular velocity of theta1, in radians per second
  5  angular velocity of theta2, in radians per second
theta1 is the angle of the first link measured from the downward vertical
(0 means the first link points straight down). theta2 is the angle of the
second link RELATIVE to the first link (0 means the two links are aligned).
The angles themselves are kept wrapped to [-pi, pi), which is why only their
cosine and sine are observed. The angular velocity of theta1 is limited to
+-4*pi (about +-12.566) rad/s and that of theta2 to +-9*pi (about +-28.274)
rad/s: after each step each velocity is clipped to its limit.

Actions, an integer (the torque applied on the actuated joint between the
two links):
  0  torque -1 N m
  1  torque 0
  2  torque +1 N m

Physics: the equations of motion of the double pendulum as in the "book"
version of Sutton and Barto's Acrobot (Sutton 1996, "Generalization in
Reinforcement Learning"), which is also what Gymnasium's Acrobot-v1 uses.
Both links are 1.0 m long and weigh 1.0 kg; the centre of mass of each link
is at its middle (0.5 m from the link's joint) and the moment of inertia of
each link is 1.0 kg m^2. Gravity is 9.8 m/s^2. The torque is held constant
during a step. Quirk of this version: each step advances time by 0.2 seconds
with ONE single classical Runge-Kutta (RK4) step of 0.2 s (Gymnasium also
uses RK4 over 0.2 s, but subdivides it); the angles are wrapped and the
velocities clipped only after that step. There is no torque noise.

Reward: -1 for every step that does not reach the goal, 0 for the step that
reaches it.

Starting state: theta1, theta2 and both angular velocities each drawn
uniformly from [-0.1, 0.1] (the links hang down, nearly at rest).

Termination (done): after a step, the free end of the chain is higher than
one link length above the pivot, that is -cos(theta1) - cos(theta2 + theta1)
> 1.0 (computed with the new angles). Episodes are also cut after 500 steps,
but that time limit is not part of the dynamics.
"""

NUM_ACTIONS = 3
EPSILON = 0.1


def state_from_obs(obs: jax.Array) -> EnvState:
    """The angles come back as arctan2(sin, cos), which lies in [-pi, pi]."""
    from gymnax.environments.classic_control.acrobot import EnvState

    obs = jnp.asarray(obs, jnp.float32)
    return EnvState(
        joint_angle1=jnp.arctan2(obs[1], obs[0]),
        joint_angle2=jnp.arctan2(obs[3], obs[2]),
        velocity_1=obs[4],
        velocity_2=obs[5],
        time=jnp.int32(0),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Energy pumping: torque in the direction of the first link's velocity.

    With probability EPSILON a uniformly random action instead.
    """
    greedy = jnp.where(obs[4] + 0.5 * obs[5] > 0, 2, 0).astype(jnp.int32)
    return epsilon_greedy(key, greedy, NUM_ACTIONS, EPSILON)


SPEC = EnvSpec(
    name="Acrobot",
    gymnax_id="Acrobot-v1",
    description=DESCRIPTION,
    obs_shape=(6,),
    num_actions=NUM_ACTIONS,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="acrobot",
)
