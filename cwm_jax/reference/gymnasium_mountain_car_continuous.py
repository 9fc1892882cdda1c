"""Hand-written reference CWM for gymnasium's MountainCarContinuous-v0 (written by the cwm-jax authors, not by an LLM).

The same as gymnax's but for the wall: gymnasium zeroes a leftward velocity at the left wall,
gymnax zeroes it at the goal side (`mountain_car_continuous.py`).
"""

import jax.numpy as jnp

POWER = 0.0015
GRAVITY = 0.0025
MAX_SPEED = 0.07
MIN_POSITION = -1.2
MAX_POSITION = 0.6
GOAL_POSITION = 0.45
GOAL_VELOCITY = 0.0
MIN_ACTION = -1.0
MAX_ACTION = 1.0


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    action = jnp.reshape(jnp.asarray(action, jnp.float32), (-1,))[0]
    position, velocity = state[0], state[1]
    force = jnp.clip(action, MIN_ACTION, MAX_ACTION)
    velocity = velocity + force * POWER - jnp.cos(3 * position) * GRAVITY
    velocity = jnp.clip(velocity, -MAX_SPEED, MAX_SPEED)
    position = jnp.clip(position + velocity, MIN_POSITION, MAX_POSITION)
    velocity = jnp.where((position <= MIN_POSITION) & (velocity < 0), 0.0, velocity)
    done = (position >= GOAL_POSITION) & (velocity >= GOAL_VELOCITY)
    # The energy cost uses the action as given (not clipped).
    reward = -0.1 * action**2 + 100.0 * done
    next_state = jnp.stack([position, velocity]).astype(jnp.float32)
    return next_state, reward.astype(jnp.float32), done
