"""CartPole-v1 (gymnax classic control)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.classic_control.cartpole import EnvState

__all__ = ["DESCRIPTION", "SPEC", "heuristic_policy", "state_from_obs"]

DESCRIPTION = """\
A pole is attached by an un-actuated joint to a cart, which moves along a
frictionless track. The pole is placed upright on the cart and the goal is to
balance it by applying forces in the left and right direction on the cart.

Observation (state), a float32 vector of 4 elements:
  0  cart position, in metres (0 is the centre of the track)
  1  cart velocity, in metres per second
  2  pole angle, in radians (0 is upright, positive is clockwise)
  3  pole angular velocity, in radians per second

Actions, an integer:
  0  push the cart to the left with a fixed force
  1  push the cart to the right with the same force

The force changes the velocities, which then move the cart and the pole; the
simulation advances in fixed time steps of 0.02 seconds. The pole tips over
under gravity unless the cart moves beneath it. The cart mass is 1.0 kg, the
pole mass 0.1 kg, the half length of the pole 0.5 m, the push force 10 N and
gravity 9.8 m/s^2.

Reward: +1 for every step taken, including the step that ends the episode.

Starting state: every element drawn uniformly from [-0.05, 0.05].

Termination (done): after a step, the pole angle is outside +-12 degrees
(+-0.2095 radians), or the cart position is outside +-2.4 (the centre of the
cart leaves the track). Episodes are also cut after 500 steps, but that time
limit is not part of the dynamics.
"""


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.classic_control.cartpole import EnvState

    return EnvState(x=obs[0], x_dot=obs[1], theta=obs[2], theta_dot=obs[3], time=0)


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Push towards the side the pole is falling to: balances ~100+ steps."""
    del key
    return (obs[2] + 0.5 * obs[3] > 0).astype(jnp.int32)


SPEC = EnvSpec(
    name="CartPole",
    gymnax_id="CartPole-v1",
    description=DESCRIPTION,
    obs_shape=(4,),
    num_actions=2,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="cartpole",
)
