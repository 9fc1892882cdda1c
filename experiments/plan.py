"""Plan with a Code World Model in the real gymnax environment, for N seeds.

    python experiments/plan.py --env gymnax/CartPole

By default it plans with the environment's hand-written reference CWM (no LLM,
no network), then runs the same planner with the true dynamics (the oracle)
and a uniformly random policy, and prints mean +- std returns, the normalized
return (paper Eq. 3), compile and run wall-clock and simulations per second.
Every evaluation is ONE jitted, vmapped call over the seeds.

Options: --model reference|oracle|PATH.py, --planner mcts|cem,
--policy muzero|gumbel, --simulations, --seeds, --json PATH, --plot PATH
(see --help).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

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


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


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


# --------------------------------------------------------------------------- model


def load_model(spec, model: str):
    """(step_fn, description) for `--model`: the ONE place a model is loaded.

    `reference`: the env's hand-written CWM; `oracle`: the true gymnax dynamics;
    anything else: a path to a CWM file. A file is untrusted: it is first
    validated, loaded and scored in the sandbox (a separate process with time
    and memory limits); only a program that passed there is loaded here. The
    file is read once, so the text loaded here is the text the sandbox
    checked, and `load_cwm` validates it again in this process: module-level
    code is literal constants only (docs/sandbox.md, "The validator").
    Raises CWMError (clear message) for a bad model file.
    """
    from cwm_jax import loader, sandbox
    from cwm_jax.errors import CWMError

    if model == "reference":
        return loader.load_reference(spec), f"reference CWM of {spec.name} (cwm_jax/reference/{spec.reference}.py)"
    if model == "oracle":
        return spec.oracle_step, f"oracle: the true gymnax dynamics of {spec.gymnax_id}"
    path = Path(model)
    if path.suffix != ".py":
        raise UsageError(f"--model must be 'reference', 'oracle' or a path to a .py file, got {model!r}")
    print(f"checking {model} in the sandbox...", flush=True)
    source = loader.read_cwm_file(path)
    checked = sandbox.score_source(source, spec, counterexamples=0)
    if not checked.valid:
        raise CWMError(checked.error or "the model was rejected")
    accuracy = checked.summary["accuracy"]
    return loader.load_cwm(source, spec), f"CWM file {model} (train accuracy {accuracy:.4f})"


# --------------------------------------------------------------------------- planners


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


def learned_value(spec, value: list[str] | None) -> dict[str, Any]:
    """`--value rollouts` -> {}; `--value learned PATH` -> value_fn and prior_fn of a train.py file."""
    if not value or value == ["rollouts"]:
        return {}
    if value[0] != "learned" or len(value) != 2:
        raise UsageError(f"--value must be 'rollouts' or 'learned PATH', got {' '.join(value)!r}")
    from planners import ppo

    try:
        network, params, header = ppo.load(value[1])
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if header.get("env") != f"gymnax/{spec.name}" or not network.discrete:
        raise UsageError(
            f"{value[1]} was trained for {header.get('env')}, not for gymnax/{spec.name} with discrete actions"
        )
    return {
        "value_fn": ppo.make_value_fn(network, params, reward_scale=header["reward_scale"]),
        "prior_fn": ppo.make_prior_fn(network, params),
    }


def make_policy(spec, step_fn, settings, learned=None):
    """The planner for one model, as a `plan(key, state)` or an open-loop Agent."""
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


def evaluate(spec, policy, keys, label: str, say) -> Evaluation:
    """Compiles, then runs one jitted, vmapped episode per key."""
    import jax
    import numpy as np

    import planners

    env, params = spec.make_gymnax()
    run = planners.make_evaluate(
        env, params, policy, obs_fn=spec.flatten_obs, action_fn=spec.to_gymnax_action
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


# --------------------------------------------------------------------------- output


def summary_table(spec, model_desc, settings, model, random, oracle, norm, sims_per_s) -> str:
    def row(name, ev):
        return f"  {name:<8} {ev.mean:>10.1f} ± {ev.std:<8.1f} {ev.compile_seconds:>9.1f} {ev.run_seconds:>8.1f}"

    norm_text = "N/A (the oracle does not beat random)" if norm is None else f"{norm:.3f}"
    planner = settings["planner"]
    if planner == "mcts":
        leaf = (
            f"random rollouts <= {settings['rollout_depth']} steps x {settings['num_rollouts']}"
            if settings.get("value", "rollouts") == "rollouts"
            else f"value and prior: {settings['value']}"
        )
        how = f"MCTS ({settings['policy']}), {settings['simulations']} simulations, {leaf}"
        how += f", discount {settings['discount']}"
        unit = "simulations/s"
    else:
        how = (
            f"CEM ({'open loop' if settings['open_loop'] else 'replanning every step'}), horizon "
            f"{settings['horizon']}, {settings['iterations']} iterations, {settings['samples']} samples, "
            f"{settings['elites']} elites"
        )
        unit = "sampled sequences/s"
    n = len(model.returns)
    lines = [
        "",
        f"{spec.name}: {n} seeds, {how}",
        f"model: {model_desc}",
        "",
        f"  {'policy':<8} {'mean return ± std':>21} {'compile s':>9} {'run s':>8}",
        row("model", model),
        row("random", random),
        row("oracle", oracle),
        "",
        f"  normalized return (model - random) / (oracle - random): {norm_text}",
        f"  model planning: {model.compile_seconds:.1f} s compile, {model.run_seconds:.1f} s run, "
        f"{int(model.lengths.sum())} real steps, {sims_per_s:,.0f} {unit}",
    ]
    return "\n".join(lines)


def write_plot(path: str, spec, model, random, oracle) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4))
    seeds = np.arange(len(model.returns))
    width = 0.27
    for i, (ev, color) in enumerate([(model, "tab:blue"), (random, "tab:gray"), (oracle, "tab:green")]):
        ax.bar(seeds + (i - 1) * width, ev.returns, width, label=f"{ev.label} (mean {ev.mean:.1f})", color=color)
    ax.set_xlabel("seed")
    ax.set_ylabel("episode return")
    ax.set_title(f"{spec.name}: per-seed returns")
    ax.set_xticks(seeds)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plan.py",
        description="Plan with a CWM in the real gymnax environment and compare with random and oracle.",
    )
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
    parser.add_argument("--discount", type=float, default=0.99, help="MCTS discount (default 0.99)")
    parser.add_argument("--value", nargs="+", metavar="rollouts|learned PATH",
                        help="MCTS leaf value: random rollouts (default) or a train.py --save file (value + prior)")
    parser.add_argument("--seeds", type=int, default=16, help="episodes, one per seed (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="plot per-seed returns (PNG)")
    return parser


def run(args, say=print) -> dict[str, Any]:
    """Everything but argument parsing and error printing; returns the JSON record."""
    from cwm_jax import envs

    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    for name in ("simulations", "rollout_depth", "num_rollouts", "horizon", "iterations", "samples", "elites"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "rollout_depth" else 1):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    spec = envs.make(args.env)
    settings = settings_for(spec, args)
    if settings["planner"] == "cem" and settings["elites"] > settings["samples"]:
        raise UsageError("--elites must not exceed --samples")

    learned = learned_value(spec, args.value)
    if learned and settings["planner"] != "mcts":
        raise UsageError("--value learned needs --planner mcts")
    settings["value"] = " ".join(args.value) if learned else "rollouts"
    say(f"environment: {spec.name} ({spec.gymnax_id}); loading model {args.model!r} ...")
    step_fn, model_desc = load_model(spec, args.model)
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
        "env": f"gymnax/{spec.name}",
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from cwm_jax.envs import UnknownEnvError
    from cwm_jax.errors import CWMError

    def say(text: str) -> None:
        print(text, flush=True)

    try:
        for path in (args.json, args.plot):
            if path and not Path(path).resolve().parent.is_dir():
                raise UsageError(f"cannot write {path}: directory {str(Path(path).parent)!r} does not exist")
        run(args, say)
    except UnknownEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CWMError as exc:
        print(f"error: cannot use model {args.model!r}:\n{exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
