"""MountainCar-v0 (gymnax classic control)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec, epsilon_greedy

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.classic_control.mountain_car import EnvState

__all__ = ["DESCRIPTION", "EPSILON", "NUM_ACTIONS", "SPEC", "heuristic_policy", "state_from_obs"]

DESCRIPTION = """\
A car is placed at the bottom of a sinusoidal valley, on a one-dimensional
track. The car's engine is too weak to drive straight up the right hill, so
the car must build momentum by driving back and forth. The goal is to reach
the flag on top of the right hill.

Observation (state), a float32 vector of 2 elements:
  0  position of the car along the x-axis, in [-1.2, 0.6] (arbitrary length
     units; the bottom of the valley is near -0.52)
  1  velocity of the car, in [-0.07, 0.07] (position units per step)

Actions, an integer:
  0  accelerate to the left
  1  do not accelerate
  2  accelerate to the right

Dynamics: in each step the velocity first changes by the engine force
(0.001 times the push direction, -1, 0 or +1) and by gravity along the
slope; the height of the track at position x is proportional to sin(3 x),
and gravity is 0.0025 (in the same units). The new velocity is clipped to
[-0.07, 0.07]. Then the position changes by the new velocity (one step is
one time unit) and is clipped to [-1.2, 0.6]. The collisions at the edges
are inelastic: if the car ends the step exactly at the left edge (-1.2)
with a negative velocity, the velocity is set to 0.

Reward: -1 for every step, including the step that reaches the goal.

Starting state: position drawn uniformly from [-0.6, -0.4], velocity 0.

Termination (done): after a step, the position is >= 0.5 and the velocity
is >= 0. Episodes are also cut after 200 steps, but that time limit is not
part of the dynamics.
"""

NUM_ACTIONS = 3
EPSILON = 0.1


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.classic_control.mountain_car import EnvState

    obs = jnp.asarray(obs, jnp.float32)
    return EnvState(position=obs[0], velocity=obs[1], time=jnp.int32(0))


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Accelerate in the direction the car is moving (pumps energy).

    Reaches the flag in about 100-120 steps. With probability EPSILON a
    uniformly random action instead.
    """
    greedy = jnp.where(obs[1] >= 0, 2, 0).astype(jnp.int32)
    return epsilon_greedy(key, greedy, NUM_ACTIONS, EPSILON)


SPEC = EnvSpec(
    name="MountainCar",
    gymnax_id="MountainCar-v0",
    description=DESCRIPTION,
    obs_shape=(2,),
    num_actions=NUM_ACTIONS,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="mountain_car",
)
