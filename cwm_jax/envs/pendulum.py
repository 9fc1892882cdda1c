"""Pendulum-v1 (gymnax classic control)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.classic_control.pendulum import EnvState

__all__ = ["DESCRIPTION", "NOISE_STD", "SPEC", "heuristic_policy", "state_from_obs"]

DESCRIPTION = """\
The inverted pendulum swing-up problem. A pendulum is attached at one end
to a fixed pivot, the other end is free. The pendulum starts in a random
position and the goal is to apply torque at the pivot to swing it into an
upright position, with its centre of gravity right above the pivot, and to
keep it there.

Observation (state), a float32 vector of 3 elements:
  0  cosine of the angle theta
  1  sine of the angle theta
  2  angular velocity of theta, in radians per second, in [-8, 8]
theta is measured from the upright position (0 means the pendulum points
straight up, pi or -pi means straight down).

Action: a float32 vector of 1 element in [-2, 2], the torque applied at the
pivot in N m (a positive torque accelerates the pendulum in the direction of
increasing theta). It is clipped to [-2, 2].

Physics: the pendulum is a uniform rigid rod of mass 1.0 kg and length
1.0 m, rotating about one of its ends, under gravity 10.0 m/s^2 (the
gymnax/Gymnasium default; not 9.8). There is no friction. Time advances by
0.05 s per step with one semi-implicit Euler step: the angular velocity is
updated first, from the current angle and the torque, and clipped to
[-8, 8] rad/s; then the angle advances with the NEW angular velocity.

Reward: the negative of a cost computed from the state BEFORE the step and
the clipped torque: the square of the angle (the angle normalised to
[-pi, pi)), plus 0.1 times the square of the angular velocity, plus 0.001
times the square of the torque. The reward is between about -16.27 and 0.

Starting state: theta drawn uniformly from [-pi, pi] and the angular
velocity uniformly from [-1, 1].

Termination (done): never; done is always False. Episodes are cut after
200 steps, but that time limit is not part of the dynamics.
"""

NOISE_STD = 0.3


def state_from_obs(obs: jax.Array) -> EnvState:
    """theta comes back as arctan2(sin, cos), which lies in [-pi, pi]."""
    from gymnax.environments.classic_control.pendulum import EnvState

    obs = jnp.asarray(obs, jnp.float32)
    return EnvState(
        theta=jnp.arctan2(obs[1], obs[0]),
        theta_dot=obs[2],
        last_u=jnp.float32(0.0),
        time=jnp.int32(0),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Energy-pumping swing-up, then a PD controller near the top.

    Far from the top, full torque in the direction of the angular velocity
    while the energy is below that of the upright pendulum at rest; near the
    top (cos theta > 0.85), torque -(10 theta + 2 theta_dot). Plus Gaussian
    noise; clipped to [-2, 2].
    """
    cos_t, sin_t, theta_dot = obs[0], obs[1], obs[2]
    theta = jnp.arctan2(sin_t, cos_t)
    # Energy per unit of inertia, up to a constant: 0.5 w^2 + 15 cos(theta).
    energy = 0.5 * theta_dot**2 + 15.0 * cos_t
    pump = jnp.where(energy < 15.0, 2.0 * jnp.where(theta_dot >= 0, 1.0, -1.0), 0.0)
    balance = -(10.0 * theta + 2.0 * theta_dot)
    u = jnp.where(cos_t > 0.85, balance, pump)
    noise = NOISE_STD * jax.random.normal(key, (1,), jnp.float32)
    return jnp.clip(u + noise, -2.0, 2.0).astype(jnp.float32)


SPEC = EnvSpec(
    name="Pendulum",
    gymnax_id="Pendulum-v1",
    description=DESCRIPTION,
    obs_shape=(3,),
    action_dim=1,
    action_low=-2.0,
    action_high=2.0,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="pendulum",
)
