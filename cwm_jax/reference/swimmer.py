"""Hand-written reference CWM for Swimmer-misc (written by the cwm-jax authors, not by an LLM).

A point mass with x/y double-integrator dynamics (semi-implicit Euler,
dt 0.05); the reward is a goal term times one factor per urchin; never done.
"""

import jax.numpy as jnp

DT = 0.05
NUM_URCHINS = 5


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    action = jnp.asarray(action, jnp.float32)
    urchins = jnp.reshape(state[0:10], (NUM_URCHINS, 2))
    xy, xy_vel, goal = state[10:12], state[12:14], state[14:16]
    xy_vel = xy_vel + DT * action
    xy = xy + DT * xy_vel
    goal_term = jnp.exp(-0.5 * jnp.sum((xy - goal) ** 2))
    urchin_terms = 1 - jnp.exp(-30 * jnp.sum((xy - urchins) ** 2, axis=-1))
    reward = goal_term * jnp.prod(urchin_terms, axis=-1)
    next_state = jnp.concatenate([state[0:10], xy, xy_vel, goal])
    return next_state.astype(jnp.float32), reward.astype(jnp.float32), jnp.bool_(False)
