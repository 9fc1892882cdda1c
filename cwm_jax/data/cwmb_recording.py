"""Transitions of the CWMB environments, recorded the paper's way (`cwm_jax.envs.cwmb`).

Per split, 10 trajectories through gymnasium itself (seeds disjoint per
split, as for every gymnasium source), as in the paper's released buffers:
to the end of the episode, at most 500 steps, for discrete actions (the
paper's Acrobot and MountainCar episodes run to their time limits of 500
and 200), at most 100 steps for continuous ones (its CEM's horizon):
- discrete actions: 5 uniformly random trajectories and 5 of a suboptimal
  policy (the paper: "5 random + 5 suboptimal"): the gymnax twin's heuristic
  where there is one (CartPole, MountainCar, Acrobot), epsilon-greedy on the
  optimal policy by value iteration over gymnasium's own transition table `P`
  (Taxi, CliffWalking), or "stick at 17 or more" (Blackjack);
- continuous actions: 10 trajectories of open-loop CEM on the true
  environment (the paper's `collect_gym_traj.py`), planned from the
  trajectory's start state over its 100 steps, with the paper's growing
  iteration budgets (1, 2, 3, 4, 5, 8, 12, 16, 20, 25), so the trajectories
  range from nearly random to competent. The paper sampled 1000 sequences
  with 100 elites; `CEM_SAMPLES` / `CEM_ELITES` are what a 2-core CPU
  affords with MuJoCo stepped in Python (docs/benchmark.md, "CWMB").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cwm_jax.envs.gymnasium_source import Act
from cwm_jax.envs.spec import EnvSpec

__all__ = ["CEM_BUDGETS", "CEM_ELITES", "CEM_SAMPLES", "DISCRETE_MAX_STEPS", "EPISODES", "MAX_STEPS", "RANDOM_EPISODES", "max_steps", "policy_name",
           "record_cwmb", "value_iteration"]

EPISODES = 10
RANDOM_EPISODES = 5  # discrete actions: the rest follow the suboptimal policy
MAX_STEPS = 100  # continuous actions: the length of a CEM trajectory
DISCRETE_MAX_STEPS = 500  # discrete actions: gymnasium's time limit ends most episodes first
CEM_BUDGETS = (1, 2, 3, 4, 5, 8, 12, 16, 20, 25)  # iterations of trajectory i (the paper's)
CEM_SAMPLES = 32  # the paper: 1000
CEM_ELITES = 4  # the paper: 100
EPSILON = 0.2  # random actions of the discrete suboptimal policies


def policy_name(spec: EnvSpec) -> str:
    """What records the trajectories of `spec` (the split's metadata)."""
    if not spec.discrete:
        return (f"{EPISODES} trajectories of open-loop CEM on the true environment, iterations {CEM_BUDGETS}, "
                f"{CEM_SAMPLES} samples, {CEM_ELITES} elites, at most {MAX_STEPS} steps")
    return (f"{RANDOM_EPISODES} uniformly random trajectories + {EPISODES - RANDOM_EPISODES} of {_suboptimal_name(spec)}"
            f", at most {DISCRETE_MAX_STEPS} steps")


def _suboptimal_name(spec: EnvSpec) -> str:
    if spec.heuristic_policy is not None:
        return f"the heuristic of cwm_jax.envs.{spec.reference}"
    if spec.name.startswith("Blackjack"):
        return f"'stick at 17 or more' (epsilon {EPSILON})"
    return f"the value-iteration optimal policy, epsilon-greedy (epsilon {EPSILON})"


def record_cwmb(spec: EnvSpec, seeds: list[int]) -> dict[str, np.ndarray]:
    """Records one split: a trajectory per seed (`len(seeds) == EPISODES`), as `record_episodes` returns them."""
    from cwm_jax.envs.gymnasium_source import make_env, record_episodes

    env = make_env(spec.name)
    shadow = None if spec.discrete else make_env(spec.name)  # where CEM tries its sequences
    try:
        act = _discrete_policy(spec, env, seeds) if spec.discrete else _cem_policy(spec, shadow)
        return record_episodes(spec, seeds, act, max_steps=max_steps(spec), env=env)
    finally:
        env.close()
        if shadow is not None:
            shadow.close()


def max_steps(spec: EnvSpec) -> int:
    """The longest trajectory recorded for `spec`."""
    return DISCRETE_MAX_STEPS if spec.discrete else MAX_STEPS


def _discrete_policy(spec: EnvSpec, env, seeds: list[int]) -> Act:
    """Random for the first RANDOM_EPISODES episodes, then the suboptimal policy of `spec`."""
    from cwm_jax.envs.gymnasium_source import heuristic_or_random

    later = [i >= RANDOM_EPISODES for i in range(len(seeds))]
    if spec.heuristic_policy is not None:  # the gymnax twin's heuristic (it has its own noise)
        return heuristic_or_random(spec, seeds, later)
    suboptimal = _suboptimal(spec, env)

    def act(env_, episode, state, rng):
        return suboptimal(state, rng) if later[episode] else env_.action_space.sample()

    return act


def _suboptimal(spec: EnvSpec, env) -> Callable[[np.ndarray, np.random.Generator], int]:
    if spec.name.startswith("Blackjack"):
        return _epsilon(lambda state: int(state[0] < 17), spec.num_actions)
    table = getattr(env.unwrapped, "P", None)
    if table is None:
        return lambda state, rng: int(rng.integers(spec.num_actions))
    greedy = value_iteration(table, spec.num_actions)
    return _epsilon(lambda state: int(greedy[int(round(float(state[0])))]), spec.num_actions)


def _epsilon(greedy: Callable[[np.ndarray], int], num_actions: int):
    def act(state, rng):
        return int(rng.integers(num_actions)) if rng.random() < EPSILON else greedy(state)

    return act


def value_iteration(table: dict, num_actions: int, *, discount: float = 0.99, sweeps: int = 1000) -> np.ndarray:
    """int [S]: the greedy actions of the optimal values of a gymnasium toy-text table `P[s][a] = [(p, s', r, done)]`."""
    n = len(table)
    values = np.zeros(n)

    def q_values(values):
        return np.array([[sum(p * (r + (0.0 if done else discount * values[s2])) for p, s2, r, done in table[s][a])
                          for a in range(num_actions)] for s in range(n)])

    for _ in range(sweeps):
        new = q_values(values).max(axis=1)
        if np.max(np.abs(new - values)) < 1e-8:
            break
        values = new
    return q_values(values).argmax(axis=1)


def _cem_policy(spec: EnvSpec, shadow) -> Act:
    """Open-loop CEM from the trajectory's start state on `shadow`, a second env of the same id; the plan is then played."""
    from cwm_jax.envs import mujoco_state

    shadow.reset(seed=0)
    low = np.full(spec.action_dim, spec.action_low, np.float64)  # the contract's bounds are the same per element
    high = np.full(spec.action_dim, spec.action_high, np.float64)
    current = {"episode": -1, "plan": np.zeros((MAX_STEPS, low.size)), "step": 0}

    def act(env_, episode, state, rng):
        if episode != current["episode"]:  # the first step: plan the whole trajectory from here
            start = mujoco_state.snapshot(env_.unwrapped)
            iterations = CEM_BUDGETS[episode % len(CEM_BUDGETS)]
            current.update(episode=episode, step=0, plan=_cem_plan(shadow.unwrapped, start, low, high, iterations, rng))
        action = current["plan"][current["step"]]
        current["step"] += 1
        return action

    return act


def _cem_plan(inner, start, low: np.ndarray, high: np.ndarray, iterations: int,
              rng: np.random.Generator) -> np.ndarray:
    """float64 [MAX_STEPS, action_dim]: the best sequence found by CEM (the paper's initial mean and std)."""
    mean = np.broadcast_to((low + high) / 2, (MAX_STEPS, low.size)).copy()
    std = np.broadcast_to(np.maximum(np.abs(low), np.abs(high)) / 2, (MAX_STEPS, low.size)).copy()
    best, best_return = mean.copy(), -np.inf
    for _ in range(iterations):
        samples = np.clip(mean + std * rng.standard_normal((CEM_SAMPLES,) + mean.shape), low, high)
        returns = np.array([_rollout_return(inner, start, sequence) for sequence in samples])
        order = np.argsort(-returns)
        elites = samples[order[:CEM_ELITES]]
        mean, std = elites.mean(axis=0), elites.std(axis=0) + 1e-6
        if returns[order[0]] > best_return:
            best, best_return = samples[order[0]], returns[order[0]]
    return best


def _rollout_return(inner, start, sequence: np.ndarray) -> float:
    """The return of an action sequence from the snapshot `start`, stopped at termination."""
    from cwm_jax.envs import mujoco_state

    mujoco_state.restore(inner, start)
    total = 0.0
    for action in sequence:
        _, reward, terminated, _, _ = inner.step(action.astype(np.float32))
        total += float(reward)
        if terminated:
            break
    return total
