"""Episodes in the REAL gymnasium environment: a host loop over one env per seed, one jitted planner call per step.

Each real step, the observations of all running seeds go through ONE
jitted, vmapped call of the policy (`plan(key, state) -> action`, [N]
states -> [N] actions); each env then takes its action in gymnasium. The
random baseline (`planners.evaluate.RandomPolicy`) samples the real action space
instead. An episode ends at `terminated` or `truncated` (gymnasium's time
limit), or after `max_steps` real steps for an env without a time limit.
"""

from __future__ import annotations

import time

import jax
import numpy as np

import planners
from planners.evaluate import RandomPolicy
from cwm_jax.envs import EnvSpec, gymnasium_source

__all__ = ["DEFAULT_MAX_STEPS", "run_episodes"]

DEFAULT_MAX_STEPS = 200  # for an env registered without max_episode_steps (CliffWalking-v1)


def run_episodes(spec: EnvSpec, policy, keys: jax.Array, *, max_steps: int | None = None):
    """Runs one real episode per key.

    Args:
      spec: a gymnasium-source spec.
      policy: `plan(key, state) -> action` (a closed-loop planner or a
        `planners.evaluate.RandomPolicy`, which samples the env's action space).
      keys: [N] PRNG keys, one per seed; seed i resets its env with a seed drawn from keys[i].
      max_steps: the cap for an env without a time limit (default DEFAULT_MAX_STEPS).

    Returns:
      (returns float64 [N], lengths int64 [N], first_call_seconds, run_seconds).

    Raises:
      ValueError: an open-loop `planners.Agent` (it plans whole sequences; not supported here).
    """
    if isinstance(policy, planners.Agent):
        raise ValueError("an open-loop CEM agent cannot act in a gymnasium environment; drop --open-loop")
    src = gymnasium_source.source(spec.source_id)[0]
    n = int(keys.shape[0])
    seeds = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (), 0, 2**31 - 1))(keys))
    env_list = [src.make_env() for _ in range(n)]
    limit = env_list[0].spec.max_episode_steps if env_list[0].spec else None
    limit = limit or (DEFAULT_MAX_STEPS if max_steps is None else max_steps)
    obs = np.stack([src.flatten(env.reset(seed=int(s))[0]) for env, s in zip(env_list, seeds, strict=True)])
    random = isinstance(policy, RandomPolicy)
    for env, s in zip(env_list, seeds, strict=True):
        env.action_space.seed(int(s))
    act = jax.jit(jax.vmap(lambda key, state: (jax.random.split(key)[0], policy(jax.random.split(key)[1], state))))
    returns, lengths = np.zeros(n), np.zeros(n, np.int64)
    running = np.ones(n, bool)
    first_call = 0.0
    start = time.perf_counter()
    while running.any():
        if random:
            actions = [env.action_space.sample() for env in env_list]
        else:
            tick = time.perf_counter()
            keys, contract_actions = act(keys, obs)
            contract_actions = np.asarray(contract_actions)
            if not first_call:
                first_call = time.perf_counter() - tick
            actions = [src.to_env_action(a) for a in contract_actions]
        for i in np.flatnonzero(running):
            raw = env_list[i].step(actions[i])
            obs[i] = src.flatten(raw[0])
            returns[i] += float(raw[1])
            lengths[i] += 1
            running[i] = not (raw[2] or raw[3] or lengths[i] >= limit)
    for env in env_list:
        env.close()
    return returns, lengths, first_call, time.perf_counter() - start - first_call
