"""DiscountingChain-bsuite (gymnax bsuite)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from cwm_jax.envs.spec import EnvSpec, epsilon_greedy

if TYPE_CHECKING:  # gymnax is imported only when a state is rebuilt: it pulls in matplotlib
    from gymnax.environments.bsuite.discounting_chain import EnvState

__all__ = [
    "DESCRIPTION",
    "EPSILON",
    "NUM_ACTIONS",
    "REWARDS",
    "SPEC",
    "TIME_SCALE",
    "heuristic_policy",
    "state_from_obs",
]

NUM_ACTIONS = 5
TIME_SCALE = 100  # params.max_steps_in_episode: the observation holds time / 100
REWARDS = (1.1, 1.0, 1.0, 1.0, 1.0)  # mapping_seed 0 gets optimal_return 1.1

DESCRIPTION = """\
DiscountingChain, from DeepMind's behaviour suite (bsuite). In the first step
the agent picks one of 5 chains; each chain pays a single reward at one fixed
delay, and nothing the agent does afterwards matters. It tests how far ahead
an agent looks.

Observation (state): a float32 vector of 2 elements:
  0  context: the chain chosen in the first step, 0 to 4, or -1 before the
     first step
  1  time: the number of steps taken since the start of the episode, divided
     by 100 (0.0 at the start, 0.01 after one step, 1.0 after 100 steps)

Actions, an integer 0 to 4. In the first step (time 0) the action picks the
chain, which is then stored as the context. In every later step the action
is ignored and the context stays as it is.

Reward: each chain pays once, in the step after which the number of steps
taken equals the chain's delay, and 0 in every other step:
  chain 0: 1.1 after 1 step (paid in the first step itself)
  chain 1: 1.0 after 3 steps
  chain 2: 1.0 after 10 steps
  chain 3: 1.0 after 30 steps
  chain 4: 1.0 after 100 steps

Starting state: context -1, time 0 (observation [-1.0, 0.0]).

Termination (done): never; done is always false. (Episodes are cut off by a
time limit of 100 steps, which is not part of the dynamics; time keeps
counting up past 100 if the episode continues.)
"""

EPSILON = 0.1


def state_from_obs(obs: jax.Array) -> EnvState:
    from gymnax.environments.bsuite.discounting_chain import EnvState

    obs = jnp.reshape(jnp.asarray(obs, jnp.float32), (2,))
    return EnvState(
        rewards=jnp.asarray(REWARDS, jnp.float32),
        context=jnp.round(obs[0]).astype(jnp.int32),
        time=jnp.round(obs[1] * TIME_SCALE).astype(jnp.int32),
    )


def heuristic_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    """Pick chain 0 (the largest and earliest reward); EPSILON random actions."""
    del obs  # only the first action matters, and chain 0 is always best
    return epsilon_greedy(key, jnp.int32(0), NUM_ACTIONS, EPSILON)


SPEC = EnvSpec(
    name="DiscountingChain",
    gymnax_id="DiscountingChain-bsuite",
    description=DESCRIPTION,
    obs_shape=(2,),
    num_actions=NUM_ACTIONS,
    state_from_obs=state_from_obs,
    heuristic_policy=heuristic_policy,
    reference="discounting_chain",
)
