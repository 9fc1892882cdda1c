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
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from cwm_jax.commands import common as command
from cwm_jax.errors import UsageError
from cwm_jax.models import learned_value, load_model
from cwm_jax.planning import CEM_DEFAULTS, MCTS_DEFAULTS, evaluate, make_policy, settings_for, sims_per_real_step
from cwm_jax.commands.report import summary_table, write_plot

# Options that only one planner reads: giving one to the other planner is a usage error.
OPTIONS_OF = {
    "mcts": ("policy", "simulations", "rollout_depth", "num_rollouts", "value"),
    "cem": ("horizon", "iterations", "samples", "elites", "open_loop"),
}

DESCRIPTION = "Plan with a CWM in the real gymnax environment and compare with random and oracle."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cwm-jax plan` (and `python experiments/plan.py`)."""
    parser.add_argument("--env", default="gymnax/CartPole", help="environment id (default: gymnax/CartPole)")
    parser.add_argument(
        "--model",
        default="reference",
        help="'reference' (the env's hand-written CWM, default), 'oracle' (true dynamics) or PATH.py",
    )
    parser.add_argument("--planner", choices=["mcts", "cem"], help="default: mcts (discrete), cem (continuous)")
    parser.add_argument("--policy", choices=["muzero", "gumbel"], help=f"MCTS policy (default {MCTS_DEFAULTS['policy']})")
    parser.add_argument("--simulations", type=int, help=f"MCTS simulations per step (default {MCTS_DEFAULTS['simulations']})")
    parser.add_argument("--rollout-depth", type=int, help=f"MCTS random rollout length (default {MCTS_DEFAULTS['rollout_depth']})")
    parser.add_argument("--num-rollouts", type=int, help=f"MCTS rollouts averaged per leaf (default {MCTS_DEFAULTS['num_rollouts']})")
    parser.add_argument("--horizon", type=int, help=f"CEM plan length (default {CEM_DEFAULTS['horizon']})")
    parser.add_argument("--iterations", type=int, help=f"CEM iterations (default {CEM_DEFAULTS['iterations']})")
    parser.add_argument("--samples", type=int, help=f"CEM samples per iteration (default {CEM_DEFAULTS['samples']})")
    parser.add_argument("--elites", type=int, help=f"CEM elites (default {CEM_DEFAULTS['elites']})")
    parser.add_argument("--open-loop", action="store_true", help="CEM: execute the whole plan before replanning (the paper)")
    parser.add_argument("--discount", type=float,
                        help="per-step discount in (0, 1] (default: 0.99 for MCTS, 1.0 for CEM, as in the paper)")
    parser.add_argument("--value", nargs="+", metavar="rollouts|learned PATH",
                        help="MCTS leaf value: random rollouts (default) or a `cwm-jax train --save` file (value + prior)")
    parser.add_argument("--seeds", type=int, default=16, help="episodes, one per seed (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="plot per-seed returns (PNG)")


def run(args: argparse.Namespace) -> int:
    """`cwm-jax plan`: errors are raised (UsageError, CWMError) for `command.run_guarded` to print."""
    command.check_writable(args.json, args.plot)
    plan(args, say)
    return command.EXIT_OK


def say(text: str) -> None:
    print(text, flush=True)


def plan(args: argparse.Namespace, say=say) -> dict[str, Any]:
    """Everything but argument parsing and error printing; returns the JSON record."""
    from cwm_jax import envs

    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    for name in ("simulations", "rollout_depth", "num_rollouts", "horizon", "iterations", "samples", "elites"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "rollout_depth" else 1):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.discount is not None and not 0.0 < args.discount <= 1.0:
        raise UsageError(f"--discount must be in (0, 1], got {args.discount}")
    spec = envs.env_spec(args.env)
    settings = settings_for(spec, args)
    other = OPTIONS_OF["cem" if settings["planner"] == "mcts" else "mcts"]
    given = [name for name in other if getattr(args, name, None) is not None and getattr(args, name) is not False]
    if given:
        flag = "--" + given[0].replace("_", "-")
        owner = "CEM" if settings["planner"] == "mcts" else "MCTS"
        raise UsageError(f"{flag} is a {owner} option; {spec.name} plans with {settings['planner'].upper()}")
    if settings["planner"] == "cem" and settings["elites"] > settings["samples"]:
        raise UsageError("--elites must not exceed --samples")
    learned_leaves = bool(args.value) and args.value[0] == "learned"
    if settings["planner"] == "mcts" and settings["rollout_depth"] == 0 and not learned_leaves:
        raise UsageError("--rollout-depth 0 leaves MCTS without leaf values; give a depth >= 1 or --value learned PATH")

    learned = learned_value(spec, args.value)
    if learned and settings["planner"] != "mcts":
        raise UsageError("--value learned needs --planner mcts")
    settings["value"] = " ".join(args.value) if learned else "rollouts"
    say(f"environment: {spec.name} ({spec.gymnax_id}); loading model {args.model!r} ...")
    step_fn, model_desc = load_model(spec, args.model, say=say)
    say(f"model: {model_desc}")

    import jax

    import planners

    keys = planners.seed_keys(args.seeds, args.seed)
    say(f"planning with {settings['planner'].upper()} over {args.seeds} seeds (compilation takes seconds per policy):")
    model = evaluate(spec, make_policy(spec, step_fn, settings, learned), keys, "model", say)
    random = evaluate(spec, planners.random_policy(spec.random_action), keys, "random", say)
    if args.model == "oracle":
        oracle = dataclasses.replace(model, label="oracle")
    else:
        oracle = evaluate(spec, make_policy(spec, spec.oracle_step, settings, learned), keys, "oracle", say)
    model.label, random.label, oracle.label = "model", "random", "oracle"

    norm = planners.normalized_return(model.mean, random.mean, oracle.mean)
    sims = sims_per_real_step(settings) * float(model.lengths.sum())
    sims_per_s = sims / model.run_seconds if model.run_seconds > 0 else math.inf
    say(summary_table(spec, model_desc, settings, model, random, oracle, norm, sims_per_s))

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
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        say(f"wrote {args.json}")
    if args.plot:
        write_plot(args.plot, spec, model, random, oracle)
        say(f"wrote {args.plot}")
    return record
