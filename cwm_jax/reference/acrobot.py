"""Hand-written reference CWM for Acrobot-v1 (written by the cwm-jax authors, not by an LLM).

One RK4 step of 0.2 s of the "book" Acrobot, then the angles are wrapped to
[-pi, pi) and the velocities clipped. The arithmetic follows gymnax's order
of operations so that float32 results agree to the last few bits.
"""

import math

import jax.numpy as jnp

DT = 0.2
LINK_LENGTH_1 = 1.0
LINK_MASS_1 = 1.0
LINK_MASS_2 = 1.0
LINK_COM_1 = 0.5
LINK_COM_2 = 0.5
LINK_MOI = 1.0
GRAVITY = 9.8
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi
PI = math.pi


def derivatives(y):
    """Time derivative of (theta1, theta2, dtheta1, dtheta2, torque)."""
    theta1, theta2, dtheta1, dtheta2, torque = y[0], y[1], y[2], y[3], y[4]
    m1, m2, l1 = LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1
    lc1, lc2 = LINK_COM_1, LINK_COM_2
    i1, i2 = LINK_MOI, LINK_MOI
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + i2
    phi2 = m2 * lc2 * GRAVITY * jnp.cos(theta1 + theta2 - PI / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
        + (m1 * lc1 + m2 * l1) * GRAVITY * jnp.cos(theta1 - PI / 2)
        + phi2
    )
    ddtheta2 = (
        torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2
    ) / (m2 * lc2**2 + i2 - d2**2 / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2, jnp.zeros_like(dtheta1)])


def wrap(x, low, high):
    """Wrap x into [low, high)."""
    diff = high - low
    go_up = x < low
    go_down = x >= high
    how_often = go_up * jnp.ceil((low - x) / diff) + go_down * jnp.floor((x - high) / diff + 1)
    return x - how_often * diff * go_down + how_often * diff * go_up


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    theta1 = jnp.arctan2(state[1], state[0])
    theta2 = jnp.arctan2(state[3], state[2])
    torque = (jnp.asarray(action, jnp.int32) - 1).astype(jnp.float32)
    y0 = jnp.stack([theta1, theta2, state[4], state[5], torque])
    half = DT / 2.0
    k1 = derivatives(y0)
    k2 = derivatives(y0 + half * k1)
    k3 = derivatives(y0 + half * k2)
    k4 = derivatives(y0 + DT * k3)
    y1 = y0 + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    new_theta1 = wrap(y1[0], -PI, PI)
    new_theta2 = wrap(y1[1], -PI, PI)
    new_dtheta1 = jnp.clip(y1[2], -MAX_VEL_1, MAX_VEL_1)
    new_dtheta2 = jnp.clip(y1[3], -MAX_VEL_2, MAX_VEL_2)
    done = -jnp.cos(new_theta1) - jnp.cos(new_theta2 + new_theta1) > 1.0
    reward = jnp.where(done, 0.0, -1.0).astype(jnp.float32)
    next_state = jnp.stack([
        jnp.cos(new_theta1),
        jnp.sin(new_theta1),
        jnp.cos(new_theta2),
        jnp.sin(new_theta2),
        new_dtheta1,
        new_dtheta2,
    ]).astype(jnp.float32)
    return next_state, reward, done
