"""The planner registry, and the timed, vmapped evaluation of a policy with its baselines.

One entry per planner (`PLANNERS`): its config class (`planners.MCTSConfig`,
`planners.CEMConfig`, the only planner settings there are), its tuned
defaults, its factory and its command-line options. Library and commands
both build planners here, so `make_planner(spec, step)` plans exactly as
`cwm-jax plan` does:

    spec = cwm_jax.make("gymnax/CartPole")
    plan = make_planner(spec, step)                          # the tuned defaults
    plan = make_planner(spec, step, num_simulations=50)      # one field replaced
    config = planner_config(spec, num_simulations=50)        # the config alone

Adding a planner: its module in `planners/` plus one `Planner` entry here.
Every evaluation is one jitted, vmapped call over the seeds; pass `mesh`
(`planners.seed_mesh()`) to split the seeds over several devices.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cwm_jax.compile_timing import compile_then_run

if TYPE_CHECKING:
    import numpy as np

    import planners
    from cwm_jax.envs import EnvSpec

    PlannerConfig = planners.MCTSConfig | planners.CEMConfig

__all__ = [
    "PLANNERS",
    "Baselines",
    "Evaluation",
    "Option",
    "Planner",
    "compile_then_run",
    "config_from_options",
    "evaluate",
    "evaluate_baselines",
    "check_search_memory",
    "make_planner",
    "normalized_return",
    "planner_config",
    "planner_for",
    "planner_of",
    "settings_record",
]


@dataclasses.dataclass(frozen=True)
class Option:
    """A command-line option of a planner: `--{name}` (dashes for underscores) sets config field `field`.

    `name` is also the key of the option in a JSON record (`settings_record`)
    and in the benchmark's recorded `plan` options.
    """

    name: str
    field: str
    type: type
    help: str
    minimum: int | None = None  # smallest value a command accepts (ints)
    choices: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Planner:
    """One registry entry: what plans, with which settings, over which action space.

    Attributes:
      name: "mcts", "cem": the value of `--planner`.
      label: how reports name it ("MCTS").
      discrete: True if it plans over discrete actions, False for a box.
      config_name: its settings, a frozen dataclass of `planners` validated on
        construction (`config_class`; `planners` is imported on first use).
      defaults: config fields over the class's own (the paper's) defaults:
        the tuned settings every caller gets unless it overrides them.
      options: the command-line options of `cwm-jax plan` and `cwm-jax bench`.
      leaf_functions: whether the factory takes `value_fn`, `prior_fn` and
        `action_mask_fn` (MCTS's leaf evaluation and masks).
      unit: what `work_per_step` counts, per second ("simulations/s").
      describe: (config, leaf value: "rollouts" or a `--value`) -> a line for reports.
      search_bytes: (config, obs_dim) -> memory of one search's state (bytes, an
        upper estimate), for `check_search_memory`.
      factory_name: its factory in `planners`, `(step_fn, config, **leaf_functions) -> plan`.
    """

    name: str
    label: str
    discrete: bool
    config_name: str
    defaults: Mapping[str, Any]
    options: tuple[Option, ...]
    leaf_functions: bool
    unit: str
    factory_name: str
    action_space: Callable[[EnvSpec], dict[str, Any]]
    work_per_step: Callable[[Any], float]
    describe: Callable[[Any, str], str]
    search_bytes: Callable[[Any, int], int]

    @property
    def config_class(self) -> type:
        import planners

        return getattr(planners, self.config_name)

    def factory(self, step_fn: planners.StepFn, config: PlannerConfig, **leaf_functions):
        import planners

        return getattr(planners, self.factory_name)(step_fn, config, **leaf_functions)


def _cem_work(config: planners.CEMConfig) -> float:
    per_search = config.num_samples * config.iterations
    return per_search // config.horizon if config.open_loop else per_search


_DISCOUNT = "per-step discount in (0, 1] (default: 0.99 for MCTS, 1.0 for CEM, as in the paper)"

PLANNERS: dict[str, Planner] = {
    planner.name: planner
    for planner in (
        # Discrete envs: mctx MCTS. Tuned so that CartPole reaches >= 475 / 500 over
        # 16 seeds in well under 2 minutes on a 2-core CPU; see docs/planning.md.
        Planner(
            name="mcts", label="MCTS", discrete=True, config_name="MCTSConfig",
            defaults={"policy": "muzero", "num_simulations": 25, "rollout_depth": 20, "num_rollouts": 32,
                      "discount": 0.99},
            options=(
                Option("policy", "policy", str, "MCTS policy (default muzero)", choices=("muzero", "gumbel")),
                Option("simulations", "num_simulations", int, "MCTS simulations per step (default 25)", 1),
                Option("rollout_depth", "rollout_depth", int, "MCTS random rollout length (default 20)", 0),
                Option("num_rollouts", "num_rollouts", int, "MCTS rollouts averaged per leaf (default 32)", 1),
                Option("discount", "discount", float, _DISCOUNT),
            ),
            leaf_functions=True, unit="simulations/s",
            factory_name="make_mcts_planner",
            action_space=lambda spec: {"num_actions": spec.num_actions},
            work_per_step=lambda config: config.num_simulations,
            # mctx's tree: per node 5 scalars, 6 per child and the state; x2 for the copy the search loop carries.
            search_bytes=lambda c, obs_dim: 8 * (c.num_simulations + 1) * (5 + 6 * c.num_actions + obs_dim),
            describe=lambda config, value: (
                f"MCTS ({config.policy}), {config.num_simulations} simulations, "
                + (f"random rollouts <= {config.rollout_depth} steps x {config.num_rollouts}"
                   if value == "rollouts" else f"value and prior: {value}")),
        ),
        # Continuous envs: CEM replanning every step, with 1/100 of the paper's per-step
        # budget so that 16 seeds finish in seconds on a CPU. The paper's settings:
        # --horizon 100 --iterations 20 --samples 1000 --elites 100 --open-loop.
        Planner(
            name="cem", label="CEM", discrete=False, config_name="CEMConfig",
            defaults={"horizon": 30, "iterations": 5, "num_samples": 200, "num_elites": 20, "discount": 1.0},
            options=(
                Option("horizon", "horizon", int, "CEM plan length (default 30)", 1),
                Option("iterations", "iterations", int, "CEM iterations (default 5)", 1),
                Option("samples", "num_samples", int, "CEM samples per iteration (default 200)", 1),
                Option("elites", "num_elites", int, "CEM elites (default 20)", 1),
                Option("open_loop", "open_loop", bool, "CEM: execute the whole plan before replanning (the paper)"),
                Option("discount", "discount", float, _DISCOUNT),
            ),
            leaf_functions=False, unit="sampled sequences/s",
            factory_name="make_cem_planner",
            action_space=lambda spec: {"action_dim": spec.action_dim, "action_low": spec.action_low,
                                       "action_high": spec.action_high},
            work_per_step=_cem_work,  # below: the sampled sequences and their states, x2 for sort and elites
            search_bytes=lambda c, obs_dim: 8 * c.num_samples * c.horizon * (c.action_dim + obs_dim + 2),
            describe=lambda config, value: (
                f"CEM ({'open loop' if config.open_loop else 'replanning every step'}), horizon {config.horizon}, "
                f"{config.iterations} iterations, {config.num_samples} samples, {config.num_elites} elites"),
        ),
    )
}


def check_search_memory(spec: EnvSpec, config: PlannerConfig, seeds: int, *, limit: int | None = None) -> int:
    """The estimated memory of `seeds` searches at once (bytes); ValueError above `limit`.

    `limit` defaults to half of this machine's memory: past it the planner
    would swap or be killed after minutes of compiling, not fail at once.
    """
    need = seeds * planner_of(config).search_bytes(config, spec.obs_dim)
    if limit is None:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    if need > limit:
        raise ValueError(f"{planner_of(config).label} over {seeds} seed{'s' if seeds != 1 else ''} at once needs "
                         f"about {need / 2**30:.1f} GiB with these settings, more "
                         f"than {limit / 2**30:.1f} GiB (half of this machine's memory); "
                         "lower the simulations, samples or horizon, or the seeds")
    return need


def planner_for(spec: EnvSpec, name: str | None = None) -> Planner:
    """The registry entry `name`, or the one for `spec`'s action space; ValueError if it does not fit."""
    if name is None:
        return next(p for p in PLANNERS.values() if p.discrete == spec.discrete)
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose one of {', '.join(PLANNERS)}")
    planner = PLANNERS[name]
    if planner.discrete != spec.discrete:
        kind = "discrete" if spec.discrete else "continuous"
        fits = planner_for(spec).name
        raise ValueError(f"{spec.name} has {kind} actions: planner {name!r} cannot plan them, use {fits!r}")
    return planner


def planner_of(config: PlannerConfig) -> Planner:
    """The registry entry whose config class `config` is."""
    return next(p for p in PLANNERS.values() if type(config).__name__ == p.config_name)


def planner_config(spec: EnvSpec | str, planner: str | None = None, **fields: Any) -> PlannerConfig:
    """The config of `planner` (default: the one for `spec`'s action space): action space, tuned defaults, `fields`.

    Args:
      spec: the environment; it gives the action count or box.
      planner: a key of `PLANNERS`.
      **fields: fields of its config class, e.g. `num_simulations=50` or
        `horizon=30`, over the registry's defaults.

    Raises:
      ValueError naming the fields that the config class does not have (or
      that it rejects).
    """
    from cwm_jax import envs

    spec = envs.env_spec(spec)
    entry = planner_for(spec, planner)
    known = {field.name for field in dataclasses.fields(entry.config_class)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a field of {entry.config_class.__name__} "
                         f"({spec.name} plans with {entry.label}); its fields: {', '.join(sorted(known))}")
    own = {name: value for name, value in spec.planner_defaults if name in known}  # e.g. a CWMB MuJoCo task's
    return entry.config_class(**{**entry.action_space(spec), **entry.defaults, **own, **fields})


def config_from_options(spec: EnvSpec, options: Mapping[str, Any], planner: str | None = None) -> PlannerConfig:
    """`planner_config` from options named as on the command line (`Option.name`).

    Options that are None, and options of the other planners, are left out
    (the benchmark gives one set for discrete and continuous envs alike).
    """
    entry = planner_for(spec, planner)
    fields = {o.field: options[o.name] for o in entry.options if options.get(o.name) is not None}
    return planner_config(spec, entry.name, **fields)


def settings_record(config: PlannerConfig) -> dict[str, Any]:
    """The config as a JSON record keyed by option name, with "planner" (what `plan` and `bench` write)."""
    entry = planner_of(config)
    return {**{o.name: getattr(config, o.field) for o in entry.options}, "planner": entry.name}


def make_planner(
    spec: EnvSpec | str,
    step_fn: planners.StepFn,
    config: PlannerConfig | None = None,
    *,
    value_fn: planners.ValueFn | None = None,
    prior_fn: planners.PriorFn | None = None,
    action_mask_fn: planners.ActionMaskFn | None = None,
    **fields: Any,
) -> planners.PlanFn | planners.Agent:
    """`plan(key, state) -> action` for an environment, with the registry's tuned defaults.

    MCTS (mctx) if its actions are discrete, else CEM; the action count or
    box comes from the spec, so it is never repeated (nor wrong). An
    open-loop CEM config gives an `Agent` (for `planners.evaluate`).

    Args:
      spec: the environment (or its id).
      step_fn: the model on one state, `step(state, action) -> (next_state, reward, done)`.
      config: a config from `planner_config` (default: `planner_config(spec, **fields)`).
      value_fn, prior_fn, action_mask_fn: MCTS's leaf evaluation and masks
        (see `planners.make_mcts_planner`).
      **fields: config fields, over `config` or the defaults.
    """
    from cwm_jax import envs

    spec = envs.env_spec(spec)
    if config is None:
        config = planner_config(spec, **fields)
    elif fields:
        config = dataclasses.replace(config, **fields)
    entry = planner_of(config)
    leaf = {"value_fn": value_fn, "prior_fn": prior_fn, "action_mask_fn": action_mask_fn}
    given = sorted(name for name, fn in leaf.items() if fn is not None)
    if entry.leaf_functions:
        return entry.factory(step_fn, config, **leaf)
    if given:
        raise ValueError(f"{', '.join(given)}: {entry.label} takes no leaf functions ({spec.name} plans with it)")
    return entry.factory(step_fn, config)


# --------------------------------------------------------------------------- evaluation


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One policy's episodes over the seeds.

    Attributes:
      label: "model", "random" or "oracle".
      returns: float64 [N], one episode return per seed.
      lengths: int [N], real steps per episode.
      compile_seconds, run_seconds: wall clock of the two phases.
    """

    label: str
    returns: np.ndarray
    lengths: np.ndarray
    compile_seconds: float
    run_seconds: float

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())


@dataclasses.dataclass(frozen=True)
class Baselines:
    """What a model's return is measured against: a uniformly random policy and the planner on the true dynamics."""

    random: Evaluation
    oracle: Evaluation


def evaluate(spec: EnvSpec, policy, keys, label: str, say: Callable[[str], None], *, mesh=None) -> Evaluation:
    """Compiles, then runs one jitted, vmapped episode per key [N] (split over `mesh`'s devices if given)."""
    import numpy as np

    import planners

    if spec.source == "gymnasium":  # a host loop over gymnasium's own environments
        from cwm_jax.gymnasium_eval import evaluate_in_gymnasium
        return Evaluation(label, *evaluate_in_gymnasium(spec, policy, keys, label, say))
    env, params = spec.make_gymnax()
    run = planners.make_evaluate(
        env, params, policy, obs_fn=spec.flatten_obs, action_fn=spec.to_gymnax_action, mesh=mesh
    )
    say(f"  {label}: compiling (one jitted, vmapped episode function; takes a few seconds) ...")
    result, compile_seconds, run_seconds = compile_then_run(
        run, keys,
        on_compiled=lambda seconds: say(f"  {label}: compiled in {seconds:.1f} s; running {keys.shape[0]} "
                                        f"episode{'s' if keys.shape[0] != 1 else ''} ..."),
    )
    returns = np.asarray(result.episode_return, np.float64)
    lengths = np.asarray(result.length)
    say(f"  {label}: done in {run_seconds:.1f} s, mean return {returns.mean():.1f}")
    return Evaluation(label, returns, lengths, compile_seconds, run_seconds)


def evaluate_baselines(spec: EnvSpec, config: PlannerConfig, keys, say: Callable[[str], None], *, mesh=None,
                       oracle: Evaluation | None = None, **leaf_functions) -> Baselines:
    """The random policy and the planner of `config` on the true dynamics (`oracle`, if given, is reused)."""
    import planners

    random = evaluate(spec, planners.random_policy(spec.random_action), keys, "random", say, mesh=mesh)
    oracle_step = spec.oracle_step
    if oracle is None and spec.source == "gymnasium":  # the real env as the model, where its state can be set
        from cwm_jax.gymnasium_eval import oracle_model
        oracle_step, how = oracle_model(spec)
        say(f"  oracle: {how}")
    elif oracle is None and spec.state_from_obs is None:  # a registered env without a way back to its state
        oracle_step = None
        say(f"  oracle: none: {spec.id} was registered without state_from_obs, so the normalized return is N/A")
    if oracle is None and oracle_step is None:  # NaN returns: the normalized return is N/A
        import numpy as np

        n = int(keys.shape[0])
        oracle = Evaluation("oracle", np.full(n, np.nan), np.zeros(n, np.int64), 0.0, 0.0)
    if oracle is None:
        policy = make_planner(spec, oracle_step, config, **leaf_functions)
        oracle = evaluate(spec, policy, keys, "oracle", say, mesh=mesh)
    return Baselines(random=random, oracle=dataclasses.replace(oracle, label="oracle"))


def normalized_return(model: float | None, random: float, oracle: float) -> float | None:
    """The paper's Eq. 3, (R_model - R_random) / (R_oracle - R_random), for a model or for none.

    None ("N/A") when the oracle does not beat random; 0.0 for a task without
    a working model where the score is defined (the paper counts failed CWMs as 0).
    """
    import planners

    if planners.normalized_return(oracle, random, oracle) is None:
        return None
    return 0.0 if model is None else planners.normalized_return(model, random, oracle)
