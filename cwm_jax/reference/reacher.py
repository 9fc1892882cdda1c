"""Hand-written reference CWM for Reacher-misc (written by the cwm-jax authors, not by an LLM).

Two absolute joint angles, each a double integrator (semi-implicit Euler,
dt 0.05); reward exp(-|tip - goal|^2) after the step; never done.
"""

import jax.numpy as jnp

DT = 0.05
TORQUE_SCALE = 1.0


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    action = jnp.asarray(action, jnp.float32)
    angles = jnp.arctan2(state[2:4], state[0:2])
    angle_vels = state[4:6]
    goal = state[6:8]
    angle_vels = angle_vels + DT * (TORQUE_SCALE * action)
    angles = angles + DT * angle_vels
    cos_a = jnp.cos(angles)
    sin_a = jnp.sin(angles)
    tip = jnp.stack([jnp.sum(cos_a), jnp.sum(sin_a)])
    reward = jnp.exp(-1 * jnp.sum((tip - goal) ** 2))
    next_state = jnp.concatenate([cos_a, sin_a, angle_vels, goal])
    return next_state.astype(jnp.float32), reward.astype(jnp.float32), jnp.bool_(False)
