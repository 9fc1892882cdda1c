"""Hand-written reference CWM for DiscountingChain-bsuite (written by the cwm-jax authors, not by an LLM).

The state is (context, time / 100): the chain picked in the first step (-1
before it) and the number of steps taken, scaled by 1/100.
"""

import jax.numpy as jnp

TIME_SCALE = 100.0
REWARDS = (1.1, 1.0, 1.0, 1.0, 1.0)
DELAYS = (1, 3, 10, 30, 100)


def step(state, action):
    state = jnp.asarray(state, jnp.float32)
    context = jnp.round(state[0]).astype(jnp.int32)
    time = jnp.round(state[1] * TIME_SCALE).astype(jnp.int32)

    context = jnp.where(time == 0, jnp.asarray(action, jnp.int32), context)
    time = time + 1

    delays = jnp.array(DELAYS, jnp.int32)
    rewards = jnp.array(REWARDS, jnp.float32)
    reward = jnp.where(time == delays[context], rewards[context], 0.0)

    next_state = jnp.stack([context.astype(jnp.float32), time.astype(jnp.float32) / TIME_SCALE])
    done = jnp.zeros((), jnp.bool_)
    return next_state, reward.astype(jnp.float32), done
