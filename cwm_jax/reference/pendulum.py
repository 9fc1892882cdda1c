"""Hand-written reference CWM for Pendulum-v1 (written by the cwm-jax authors, not by an LLM)."""

import math

import jax.numpy as jnp

MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
GRAVITY = 10.0
MASS = 1.0
LENGTH = 1.0
PI = math.pi


def angle_normalize(x):
    """Angle in [-pi, pi)."""
    return ((x + PI) % (2 * PI)) - PI


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    theta = jnp.arctan2(state[1], state[0])
    theta_dot = state[2]
    u = jnp.clip(jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))[0], -MAX_TORQUE, MAX_TORQUE)
    reward = -(angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * (u**2))
    new_theta_dot = theta_dot + (
        (3 * GRAVITY / (2 * LENGTH) * jnp.sin(theta) + 3.0 / (MASS * LENGTH**2) * u) * DT
    )
    new_theta_dot = jnp.clip(new_theta_dot, -MAX_SPEED, MAX_SPEED)
    new_theta = theta + new_theta_dot * DT
    next_state = jnp.stack([jnp.cos(new_theta), jnp.sin(new_theta), new_theta_dot])
    return next_state.astype(jnp.float32), reward.astype(jnp.float32), jnp.bool_(False)
