"""Planning evaluated in the real gymnasium environment (`gymnasium/<id>` sources).

A host loop over one gymnasium environment per seed; at every real step, one
call of the jitted, vmapped policy decides the actions of all seeds that are
still running. Episodes end at gymnasium's termination or truncation (its
TimeLimit), and the return is the sum of gymnasium's rewards.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax.data.transitions import Transitions, load_split
from cwm_jax.envs import EnvSpec, gymnax_twin
from cwm_jax.reference import has_reference
from cwm_jax.score.accuracy import check
from cwm_jax.validate.loader import load_reference
from cwm_jax.envs.gymnasium_source import STATE_SETTERS, contract_action, flatten_observation, make_env, real_step

__all__ = ["evaluate_in_gymnasium", "oracle_model"]


def oracle_model(spec: EnvSpec) -> tuple[Callable | None, str]:
    """(the true dynamics as a model, how it is described) for the oracle of `plan`, or (None, why there is none).

    In order:
    - the environment's gymnax twin (`envs.gymnax_twin`) when it reproduces
      every held-out gymnasium transition (strict accuracy 1.0, checked here
      on the recorded test split): the same dynamics at XLA speed;
    - the reference CWM of a toy-text environment (Taxi, CliffWalking) when it
      reproduces every entry of gymnasium's own deterministic transition table
      `P`, every (state, action) pair there is: the true dynamics, proven;
    - `gymnasium_source.real_step`: the unwrapped env set to each
      observation's state (`STATE_SETTERS`) and stepped in Python through
      `jax.pure_callback`, at Python speed, so the planner's settings decide
      how long the oracle takes (docs/environments.md).
    """
    twin = gymnax_twin(spec.name)
    mismatch = ""
    if twin is not None:
        test = load_split(spec, "test")
        report = check(twin.oracle_step, test)
        exact = len(test) - len(report.failures)
        if exact == len(test):
            return twin.oracle_step, (f"{twin.id}'s dynamics, which reproduce all {len(test)} held-out "
                                      f"gymnasium transitions exactly (at XLA speed)")
        mismatch = f" ({twin.id} reproduces only {exact} of {len(test)} held-out transitions)"
    table = _transition_table(spec)
    if table is not None and has_reference(spec):
        step = load_reference(spec)
        wrong = len(check(step, table).failures)
        if not wrong:
            return step, (f"the reference CWM of {spec.name}, which reproduces all {len(table)} (state, action) pairs "
                          "of gymnasium's own transition table P exactly (at XLA speed)")
        mismatch += f" (its reference CWM misses {wrong} of the {len(table)} pairs of gymnasium's table P)"
    if spec.name not in STATE_SETTERS:
        return None, (f"no oracle: the state of {spec.id} cannot be set from an observation here (known: "
                      f"{', '.join(sorted(STATE_SETTERS))}){mismatch}, so the normalized return is N/A")
    return real_step(spec), f"the real gymnasium env {spec.name}, set to each observation's state{mismatch}"


def _transition_table(spec: EnvSpec) -> Transitions | None:
    """Every (state, action) pair of a toy-text env's table `P` as transitions, or None (no table, or chance in it)."""
    env = make_env(spec.name)
    try:
        table = getattr(env.unwrapped, "P", None)
    finally:
        env.close()
    if table is None or spec.obs_dim != 1 or not spec.discrete:
        return None
    rows = [(s, a, *entries[0][1:]) for s, actions in table.items() for a, entries in actions.items()
            if len(entries) == 1 and entries[0][0] == 1.0]
    if len(rows) != sum(len(actions) for actions in table.values()):
        return None
    state, action, next_state, reward, done = (np.asarray(column) for column in zip(*rows))
    return Transitions(state=state[:, None].astype(np.float32), action=action.astype(np.int32),
                       next_state=next_state[:, None].astype(np.float32), reward=reward.astype(np.float32),
                       done=done.astype(bool), episode=np.zeros(len(rows), np.int32))


def evaluate_in_gymnasium(spec: EnvSpec, policy: Callable, keys: jax.Array, label: str,
                          say: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One episode per key [N] in gymnasium (reset seeds 0..N-1), the policy jitted and vmapped over seeds.

    Args:
      policy: (key, state float32 [obs_dim]) -> contract action.
      keys: [N] PRNG keys, one per seed; each step splits them.

    Returns:
      (returns float64 [N], lengths int [N], compile_seconds, run_seconds).
    """
    n = int(keys.shape[0])
    decide = jax.jit(jax.vmap(policy))
    step_keys = jax.jit(jax.vmap(lambda k: tuple(jax.random.split(k))))
    envs_ = [make_env(spec.name, max_episode_steps=spec.episode_steps) for _ in range(n)]
    try:
        states = np.stack([flatten_observation(e.observation_space, e.reset(seed=i)[0]) for i, e in enumerate(envs_)])
        running = np.ones(n, bool)
        returns, lengths = np.zeros(n), np.zeros(n, np.int64)
        say(f"  {label}: compiling (one jitted, vmapped decision for all {n} seeds) ...")
        start = time.perf_counter()
        keys, now = step_keys(keys)
        actions = np.asarray(decide(now, jnp.asarray(states)))
        compile_seconds = time.perf_counter() - start
        say(f"  {label}: compiled in {compile_seconds:.1f} s; acting in gymnasium ({n} environments) ...")
        start = time.perf_counter()
        while running.any():
            for i in np.flatnonzero(running):
                obs, reward, terminated, truncated, _ = envs_[i].step(contract_action(spec, actions[i]))
                states[i] = flatten_observation(envs_[i].observation_space, obs)
                returns[i] += float(reward)
                lengths[i] += 1
                running[i] = not (terminated or truncated)
            if running.any():
                keys, now = step_keys(keys)
                actions = np.asarray(decide(now, jnp.asarray(states)))
        run_seconds = time.perf_counter() - start
    finally:
        for env in envs_:
            env.close()
    say(f"  {label}: done in {run_seconds:.1f} s, mean return {returns.mean():.1f}")
    return returns, lengths, compile_seconds, run_seconds

