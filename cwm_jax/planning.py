"""Planner settings, policies and the timed, vmapped evaluation of one policy.

`make_planner(env, step_fn, **overrides)` builds the planner an environment
needs (MCTS for discrete actions, CEM for continuous ones) with its action
space taken from the spec; `planner_config` gives the config alone.

Used by `cwm-jax plan` (cwm_jax/commands/plan.py) and the benchmark (`synth/bench/runner.py`). Every
evaluation is one jitted, vmapped call over the seeds; pass `mesh`
(`planners.seed_mesh()`) to split the seeds over several devices.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cwm_jax.errors import UsageError

if TYPE_CHECKING:
    import planners
    from cwm_jax.envs import EnvSpec

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


# The discount each planner uses when none is given: MCTS's 0.99 (the
# paper's tree and rollouts), CEM's 1.0 (the paper sums rewards).
DEFAULT_DISCOUNT = {"mcts": 0.99, "cem": 1.0}
# Setting names of `cwm-jax plan` -> MCTSConfig / CEMConfig fields.
CONFIG_FIELDS = {
    "mcts": {"policy": "policy", "simulations": "num_simulations", "rollout_depth": "rollout_depth",
             "num_rollouts": "num_rollouts", "discount": "discount"},
    "cem": {"horizon": "horizon", "iterations": "iterations", "samples": "num_samples", "elites": "num_elites",
            "discount": "discount"},
}


def planner_config(env: str | EnvSpec, **overrides: Any) -> planners.MCTSConfig | planners.CEMConfig:
    """The planner configuration an environment needs, its action space taken from the spec.

    Args:
      env: an environment id or `EnvSpec`.
      **overrides: `planners.MCTSConfig` fields (discrete actions) or
        `planners.CEMConfig` fields (continuous actions), e.g.
        `num_simulations=50` or `horizon=30`.

    Returns:
      `MCTSConfig(num_actions=spec.num_actions, ...)` for a discrete env,
      `CEMConfig(action_dim=..., action_low=..., action_high=..., ...)` for a
      continuous one.
    """
    import planners
    from cwm_jax import envs

    spec = envs.env_spec(env)
    if spec.discrete:
        return planners.MCTSConfig(**{"num_actions": spec.num_actions, **overrides})
    space = {"action_dim": spec.action_dim, "action_low": spec.action_low, "action_high": spec.action_high}
    return planners.CEMConfig(**{**space, **overrides})


def make_planner(
    env: str | EnvSpec,
    step_fn: planners.StepFn,
    *,
    value_fn: planners.ValueFn | None = None,
    prior_fn: planners.PriorFn | None = None,
    action_mask_fn: planners.ActionMaskFn | None = None,
    **overrides: Any,
) -> planners.PlanFn:
    """`plan(key, state) -> action` for an environment: MCTS (mctx) if its actions are discrete, else CEM.

    The action count or box comes from the spec, so it is never repeated (nor
    wrong). `value_fn`, `prior_fn` and `action_mask_fn` are MCTS's (see
    `planners.make_mcts_planner`); `overrides` are fields of the config
    (`planner_config`).
    """
    import planners

    config = planner_config(env, **overrides)
    if isinstance(config, planners.MCTSConfig):
        return planners.make_mcts_planner(
            step_fn, config, value_fn=value_fn, prior_fn=prior_fn, action_mask_fn=action_mask_fn
        )
    if value_fn is not None or prior_fn is not None or action_mask_fn is not None:
        raise ValueError("value_fn, prior_fn and action_mask_fn are MCTS options; this environment plans with CEM")
    return planners.make_cem_planner(step_fn, config)


def settings_for(spec, args) -> dict[str, Any]:
    """The planner settings: command-line flags over per-env over global defaults.

    `settings["discount"]` is the discount the planner really uses: `args.discount`,
    or the planner's default (`DEFAULT_DISCOUNT`) when it is None.
    """
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
    discount = getattr(args, "discount", None)
    base["discount"] = DEFAULT_DISCOUNT[planner] if discount is None else discount
    return base


def make_policy(spec, step_fn, settings, learned: dict[str, Any] | None = None):
    """The planner for one model, as a `plan(key, state)` or an open-loop Agent.

    `learned`: optional MCTS leaf evaluation (`value_fn`, `prior_fn`) from a
    trained network, replacing random rollouts.
    """
    import planners

    overrides = {field: settings[name] for name, field in CONFIG_FIELDS[settings["planner"]].items()}
    if settings["planner"] == "cem" and settings["open_loop"]:
        search = planners.make_cem_search(step_fn, planner_config(spec, **overrides))
        return planners.open_loop_agent(search, replan_every=settings["horizon"])
    return make_planner(spec, step_fn, **(learned or {}), **overrides)


def sims_per_real_step(settings) -> int:
    """MCTS: simulations; CEM: sampled sequences (samples x iterations) per search."""
    if settings["planner"] == "mcts":
        return settings["simulations"]
    per_search = settings["samples"] * settings["iterations"]
    return per_search // settings["horizon"] if settings["open_loop"] else per_search


def evaluate(spec, policy, keys, label: str, say, *, mesh=None) -> Evaluation:
    """Compiles, then runs one jitted, vmapped episode per key (split over `mesh`'s devices if given)."""
    import numpy as np

    import planners

    env, params = spec.make_gymnax()
    run = planners.make_evaluate(
        env, params, policy, obs_fn=spec.flatten_obs, action_fn=spec.to_gymnax_action, mesh=mesh
    )
    say(f"  {label}: compiling (one jitted, vmapped episode function; takes a few seconds) ...")
    result, compile_seconds, run_seconds = compile_then_run(
        run, keys,
        on_compiled=lambda seconds: say(f"  {label}: compiled in {seconds:.1f} s; running {keys.shape[0]} episodes ..."),
    )
    returns = np.asarray(result.episode_return, np.float64)
    lengths = np.asarray(result.length)
    say(f"  {label}: done in {run_seconds:.1f} s, mean return {returns.mean():.1f}")
    return Evaluation(label, returns, lengths, compile_seconds, run_seconds)


def compile_then_run(jitted, *args, on_compiled: Callable[[float], None] = lambda seconds: None):
    """Compiles `jitted` (a `jax.jit` function) for `args`, then runs it once, timing each apart.

    Returns:
      (output, compile_seconds, run_seconds); `on_compiled(compile_seconds)` is
      called in between (to report progress).
    """
    import jax

    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    on_compiled(compile_seconds)
    start = time.perf_counter()
    output = jax.block_until_ready(compiled(*args))
    return output, compile_seconds, time.perf_counter() - start
