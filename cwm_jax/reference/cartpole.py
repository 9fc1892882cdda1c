"""Hand-written reference CWM for CartPole-v1 (written by the cwm-jax authors, not by an LLM)."""

import jax.numpy as jnp

GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
TOTAL_MASS = CART_MASS + POLE_MASS
HALF_LENGTH = 0.5
POLE_MASS_LENGTH = POLE_MASS * HALF_LENGTH
FORCE = 10.0
DT = 0.02
THETA_LIMIT = 12 * 2 * 3.141592653589793 / 360
X_LIMIT = 2.4


def step(state, action):
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    force = jnp.where(action == 1, FORCE, -FORCE)
    cos_t = jnp.cos(theta)
    sin_t = jnp.sin(theta)
    temp = (force + POLE_MASS_LENGTH * theta_dot**2 * sin_t) / TOTAL_MASS
    theta_acc = (GRAVITY * sin_t - cos_t * temp) / (
        HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos_t**2 / TOTAL_MASS)
    )
    x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_t / TOTAL_MASS
    next_state = jnp.stack([
        x + DT * x_dot,
        x_dot + DT * x_acc,
        theta + DT * theta_dot,
        theta_dot + DT * theta_acc,
    ]).astype(jnp.float32)
    done = (jnp.abs(next_state[0]) > X_LIMIT) | (jnp.abs(next_state[2]) > THETA_LIMIT)
    return next_state, jnp.float32(1.0), done
