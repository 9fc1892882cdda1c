"""Hand-written reference CWM for MountainCar-v0 (written by the cwm-jax authors, not by an LLM)."""

import jax.numpy as jnp

FORCE = 0.001
GRAVITY = 0.0025
MAX_SPEED = 0.07
MIN_POSITION = -1.2
MAX_POSITION = 0.6
GOAL_POSITION = 0.5
GOAL_VELOCITY = 0.0


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    position, velocity = state[0], state[1]
    push = jnp.asarray(action, jnp.int32) - 1
    velocity = velocity + push * FORCE - jnp.cos(3 * position) * GRAVITY
    velocity = jnp.clip(velocity, -MAX_SPEED, MAX_SPEED)
    position = jnp.clip(position + velocity, MIN_POSITION, MAX_POSITION)
    # Inelastic left wall: stop the car when it hits it moving left.
    velocity = jnp.where((position == MIN_POSITION) & (velocity < 0), 0.0, velocity)
    done = (position >= GOAL_POSITION) & (velocity >= GOAL_VELOCITY)
    next_state = jnp.stack([position, velocity]).astype(jnp.float32)
    return next_state, jnp.float32(-1.0), done
