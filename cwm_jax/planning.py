"""Planner settings, policies and the timed, vmapped evaluation of one policy.

Used by `cwm-jax plan` (cwm_jax/plan_cli.py) and the benchmark (`synth/bench.py`). Every
evaluation is one jitted, vmapped call over the seeds; pass `mesh`
(`planners.seed_mesh()`) to split the seeds over several devices.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from cwm_jax.errors import UsageError

# Discrete envs: MCTS (mctx). Chosen so that CartPole reaches >= 475 / 500 over
# 16 seeds in well under 2 minutes on a 2-core CPU; see docs/planning.md.
MCTS_DEFAULTS = {"policy": "muzero", "simulations": 25, "rollout_depth": 20, "num_rollouts": 32}
# Continuous envs: CEM, replanning every step, with 1/100 of the paper's
# per-step budget so that 16 seeds finish in seconds on a CPU. The paper's
# settings: --horizon 100 --iterations 20 --samples 1000 --elites 100
# (add --open-loop for its execute-the-whole-plan variant).
CEM_DEFAULTS = {"horizon": 30, "iterations": 5, "samples": 200, "elites": 20}
# Per-environment overrides of the defaults above.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {}


@dataclasses.dataclass
class Evaluation:
    label: str
    returns: Any  # np.ndarray [N]
    lengths: Any  # np.ndarray [N]
    compile_seconds: float
    run_seconds: float

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())


def settings_for(spec, args) -> dict[str, Any]:
    """The planner settings: command-line flags over per-env over global defaults."""
    planner = args.planner or ("mcts" if spec.discrete else "cem")
    if planner == "mcts" and not spec.discrete:
        raise UsageError(f"{spec.name} has continuous actions: use --planner cem (mctx needs discrete actions)")
    if planner == "cem" and spec.discrete:
        raise UsageError(f"{spec.name} has discrete actions: use --planner mcts")
    base = dict(MCTS_DEFAULTS if planner == "mcts" else CEM_DEFAULTS)
    base.update({k: v for k, v in ENV_DEFAULTS.get(spec.name, {}).items() if k in base})
    for key in base:
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    if planner == "cem":
        base["open_loop"] = args.open_loop
    base["planner"] = planner
    base["discount"] = args.discount
    return base


def make_policy(spec, step_fn, settings, learned: dict[str, Any] | None = None):
    """The planner for one model, as a `plan(key, state)` or an open-loop Agent.

    `learned`: optional MCTS leaf evaluation (`value_fn`, `prior_fn`) from a
    trained network, replacing random rollouts.
    """
    import planners

    if settings["planner"] == "mcts":
        return planners.make_mcts_planner(
            step_fn,
            num_actions=spec.num_actions,
            num_simulations=settings["simulations"],
            policy=settings["policy"],
            rollout_depth=settings["rollout_depth"],
            num_rollouts=settings["num_rollouts"],
            discount=settings["discount"],
            **(learned or {}),
        )
    cem = dict(
        action_dim=spec.action_dim,
        action_low=spec.action_low,
        action_high=spec.action_high,
        horizon=settings["horizon"],
        iterations=settings["iterations"],
        num_samples=settings["samples"],
        num_elites=settings["elites"],
    )
    if settings["open_loop"]:
        search = planners.make_cem_search(step_fn, **cem)
        return planners.open_loop_agent(search, replan_every=settings["horizon"])
    return planners.make_cem_planner(step_fn, **cem)


def sims_per_real_step(settings) -> int:
    """MCTS: simulations; CEM: sampled sequences (samples x iterations) per search."""
    if settings["planner"] == "mcts":
        return settings["simulations"]
    per_search = settings["samples"] * settings["iterations"]
    return per_search // settings["horizon"] if settings["open_loop"] else per_search


def evaluate(spec, policy, keys, label: str, say, *, mesh=None) -> Evaluation:
    """Compiles, then runs one jitted, vmapped episode per key (split over `mesh`'s devices if given)."""
    import jax
    import numpy as np

    import planners

    env, params = spec.make_gymnax()
    run = planners.make_evaluate(
        env, params, policy, obs_fn=spec.flatten_obs, action_fn=spec.to_gymnax_action, mesh=mesh
    )
    say(f"  {label}: compiling (one jitted, vmapped episode function; takes a few seconds) ...")
    start = time.perf_counter()
    compiled = run.lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    say(f"  {label}: compiled in {compile_seconds:.1f} s; running {keys.shape[0]} episodes ...")
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(keys))
    run_seconds = time.perf_counter() - start
    returns = np.asarray(result.episode_return, np.float64)
    lengths = np.asarray(result.length)
    say(f"  {label}: done in {run_seconds:.1f} s, mean return {returns.mean():.1f}")
    return Evaluation(label, returns, lengths, compile_seconds, run_seconds)
