"""`cwm-jax plan`: plan with a Code World Model in the real gymnax environment, for N seeds.

    cwm-jax plan --env gymnax/CartPole        (or: python experiments/plan.py --env gymnax/CartPole)

By default it plans with the environment's hand-written reference CWM (no LLM,
no network), then runs the same planner with the true dynamics (the oracle)
and a uniformly random policy, and prints mean +- std returns, the normalized
return (paper Eq. 3), compile and run wall-clock and simulations per second.
Every evaluation is ONE jitted, vmapped call over the seeds.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from cwm_jax.chance_planning import chance_baselines, is_chance_model, make_chance_planner
from cwm_jax.commands import common as command
from cwm_jax.commands import outputs
from cwm_jax.commands.planner_options import add_planner_arguments, config_from_args
from cwm_jax.commands.report import summary_table, write_plot
from cwm_jax.errors import UsageError
from cwm_jax.models import learned_value, load_model
from cwm_jax.planning import (
    PLANNERS,
    check_search_memory,
    evaluate,
    evaluate_baselines,
    make_planner,
    normalized_return,
    planner_of,
    settings_record,
)

__all__ = ["DESCRIPTION", "add_arguments", "plan", "run"]

DESCRIPTION = "Plan with a CWM in the real gymnax environment and compare with random and oracle."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cwm-jax plan` (and `python experiments/plan.py`)."""
    parser.add_argument("--env", default="gymnax/CartPole", help="environment id (default: gymnax/CartPole)")
    parser.add_argument(
        "--model",
        default="reference",
        help="'reference' (the env's hand-written CWM, default), 'oracle' (true dynamics) or PATH.py",
    )
    add_planner_arguments(parser)
    parser.add_argument("--value", nargs="+", metavar="rollouts|learned PATH",
                        help="MCTS leaf value: random rollouts (default) or a `cwm-jax train --save` file (value + prior)")
    parser.add_argument("--seeds", type=int, default=16, help="episodes, one per seed (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="plot per-seed returns (PNG)")


def run(args: argparse.Namespace) -> int:
    """`cwm-jax plan`: errors are raised (UsageError, CWMError) for `command.run_guarded` to print."""
    outputs.check_files(args.json, args.plot)
    record, draw = plan(args, say)
    written = [outputs.write_output(path, write, say=say, error=command.error, what=what, suffix=suffix)
               for path, write, what, suffix in (
                   (args.json, lambda p: outputs.write_json(p, record), "the JSON record", ".json"),
                   (args.plot, draw, "the plot", ".png")) if path]
    return command.EXIT_OK if all(written) else command.EXIT_FAILED


def say(text: str) -> None:
    print(text, flush=True)


def plan(args: argparse.Namespace, say=say) -> tuple[dict[str, Any], Callable[[str], None]]:
    """Everything but argument parsing, error printing and the output files.

    Returns:
      (the JSON record, a function that draws the per-seed returns plot to a path).
    """
    from cwm_jax import envs

    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    spec = envs.env_spec(args.env)
    config = config_from_args(spec, args)
    entry = planner_of(config)
    learned_leaves = bool(args.value) and args.value[0] == "learned"
    if args.value and not entry.leaf_functions:
        raise UsageError(f"--value is a {next(p.label for p in PLANNERS.values() if p.leaf_functions)} option; "
                         f"{spec.name} plans with {entry.label}")
    if entry.leaf_functions and config.rollout_depth == 0 and not learned_leaves:
        raise UsageError("--rollout-depth 0 leaves MCTS without leaf values; give a depth >= 1 or --value learned PATH")

    try:
        check_search_memory(spec, config, args.seeds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    learned = learned_value(spec, args.value)
    settings = {**settings_record(config), "value": " ".join(args.value) if learned else "rollouts"}
    say(f"environment: {spec.id}; loading model {args.model!r} ...")
    step_fn, model_desc = load_model(spec, args.model, say=say, warn=command.warning)
    say(f"model: {model_desc}")

    import jax

    import planners

    keys = planners.seed_keys(args.seeds, args.seed)
    say(f"planning with {entry.label} over {args.seeds} seeds (compilation takes seconds per policy):")
    chance = is_chance_model(step_fn)
    if chance:
        model_desc += "; planned with stochastic MCTS (mctx.stochastic_muzero_policy), outcomes sampled in rollouts"
    if chance and (learned or entry.name != "mcts"):
        raise UsageError("a chance model plans with stochastic MCTS and random rollouts: drop --value and "
                         "--planner (docs/chance.md)")
    with command.progress("planning (compile, then the episodes)"):
        policy = make_chance_planner(spec, step_fn, config) if chance else make_planner(spec, step_fn, config,
                                                                                          **learned)
        model = evaluate(spec, policy, keys, "model", say)
        reuse = model if args.model == "oracle" else None
        baselines = (chance_baselines(spec, config, keys, say, oracle=reuse) if spec.stochastic
                     else evaluate_baselines(spec, config, keys, say, oracle=reuse, **learned))
    random, oracle = baselines.random, baselines.oracle

    norm = normalized_return(model.mean, random.mean, oracle.mean)
    sims = entry.work_per_step(config) * float(model.lengths.sum())
    sims_per_s = sims / model.run_seconds if model.run_seconds > 0 else math.inf
    say(summary_table(spec, model_desc, config, settings["value"], model, random, oracle, norm, sims_per_s))

    record = {
        "env": spec.id,
        "model": args.model,
        "model_description": model_desc,
        "settings": settings,
        "seeds": args.seeds,
        "base_seed": args.seed,
        "mean_return": model.mean,
        "std_return": model.std,
        "returns": model.returns.tolist(),
        "lengths": model.lengths.tolist(),
        "random_return": random.mean,
        "random_std": random.std,
        "random_returns": random.returns.tolist(),
        "oracle_return": oracle.mean,
        "oracle_std": oracle.std,
        "oracle_returns": oracle.returns.tolist(),
        "normalized_return": norm,
        "compile_seconds": model.compile_seconds,
        "run_seconds": model.run_seconds,
        "compile_seconds_total": model.compile_seconds + random.compile_seconds
        + (oracle.compile_seconds if args.model != "oracle" else 0.0),
        "run_seconds_total": model.run_seconds + random.run_seconds
        + (oracle.run_seconds if args.model != "oracle" else 0.0),
        "real_steps": int(model.lengths.sum()),
        "sims_per_s": sims_per_s,
        "device": str(jax.devices()[0]),
    }
    return record, lambda path: write_plot(path, spec, model, random, oracle)
