"""MountainCarContinuous-v0 (gymnax classic control)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.classic_control.continuous_mountain_car import EnvState

__all__ = ["DESCRIPTION", "EPSILON_STD", "SPEC", "heuristic_policy", "state_from_obs"]

DESCRIPTION = """\
A car is placed at the bottom of a sinusoidal valley, on a one-dimensional
track. The car's engine is too weak to drive straight up the right hill, so
the car must build momentum by driving back and forth. The goal is to reach
the flag on top of the right hill while spending as little energy as
possible. This is the continuous-action version of MountainCar.

Observation (state), a float32 vector of 2 elements:
  0  position of the car along the x-axis, in [-1.2, 0.6] (arbitrary length
     units; the bottom of the valley is near -0.52)
  1  velocity of the car, in [-0.07, 0.07] (position units per step)

Action: a float32 vector of 1 element in [-1, 1], the force applied to the
car (negative pushes left, positive pushes right). It is clipped to [-1, 1]
before it moves the car.

Dynamics: in each step the velocity first changes by the engine (the
clipped force times a power of 0.0015) and by gravity along the slope; the
height of the track at position x is proportional to sin(3 x), and gravity
is 0.0025 (in the same units). The new velocity is clipped to
[-0.07, 0.07]. Then the position changes by the new velocity (one step is
one time unit) and is clipped to [-1.2, 0.6]. Quirks of this version: at the
left edge the position is clipped but the velocity is NOT reset (unlike
MountainCar-v0); and if after a step the position is at or beyond the goal
(0.45) while the velocity is negative, the velocity is set to 0.

Reward: -0.1 times the square of the action (the action as given, not
clipped) in every step, plus 100 in the step that reaches the goal (position
>= 0.45 and velocity >= 0 after the step).

Starting state: position drawn uniformly from [-0.6, -0.4], velocity 0.

Termination (done): after a step, the position is >= 0.45 and the velocity
is >= 0. Episodes are also cut after 999 steps, but that time limit is not
part of the dynamics.
"""

EPSILON_STD = 0.3


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.classic_control.continuous_mountain_car import EnvState

    obs = jnp.asarray(obs, jnp.float32)
    return EnvState(position=obs[0], velocity=obs[1], time=jnp.int32(0))


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Full force in the direction the car is moving, plus Gaussian noise.

    Reaches the flag in about 100 steps (return about +90).
    """
    greedy = jnp.where(obs[1] >= 0, 1.0, -1.0)
    noise = EPSILON_STD * jax.random.normal(key, (1,), jnp.float32)
    return jnp.clip(greedy + noise, -1.0, 1.0).astype(jnp.float32)


SPEC = EnvSpec(
    name="MountainCarContinuous",
    gymnax_id="MountainCarContinuous-v0",
    description=DESCRIPTION,
    obs_shape=(2,),
    action_dim=1,
    action_low=-1.0,
    action_high=1.0,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="mountain_car_continuous",
)
