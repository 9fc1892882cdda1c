"""`cwm-jax train`: train PPO inside a Code World Model; evaluate the policy in the real env.

    cwm-jax train --env gymnax/CartPole --model reference --seeds 16   (or: python experiments/train.py ...)

K seeds train at once (`jax.jit(jax.vmap(train))`, `planners.ppo`) inside the
model wrapped as a gymnax env (`CWMEnv`); every `steps/evals` model steps each
seed plays one real-env episode, which gives the learning curve (real-env
return against model steps). At the end each seed's greedy policy plays one
real-env episode (`planners.make_episode_fn`, the evaluation `cwm-jax plan` uses).

--model reference|oracle|PATH.py resolves like `cwm-jax plan` (`cwm_jax.models.load_model`;
a file goes through the sandbox check first); --model real trains in the real
gymnax env instead (the baseline with the same budget). --save PATH writes the
parameters for `cwm-jax plan --value learned PATH` (format: docs/rl.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from cwm_jax.commands import common as command
from cwm_jax.commands import outputs
from cwm_jax.errors import UsageError
from cwm_jax.models import load_model
from cwm_jax.compile_timing import compile_then_run
from cwm_jax.commands.report import write_learning_curve

__all__ = ["PRESETS", "add_arguments", "run", "train", "training_env"]

# Per-env PPO settings (planners.ppo.PPOConfig fields); see docs/rl.md.
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole": {"total_timesteps": 500_000},
    "Acrobot": {"total_timesteps": 500_000},
    "MountainCar": {"total_timesteps": 500_000},
    "Pendulum": {
        "total_timesteps": 500_000, "num_envs": 16, "num_steps": 256, "num_minibatches": 32,
        "update_epochs": 10, "learning_rate": 1e-3, "gamma": 0.95, "ent_coef": 0.0, "reward_scale": 0.1,
    },
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `cwm-jax train` (and `python experiments/train.py`)."""
    p.add_argument("--env", default="gymnax/CartPole", help="environment id (default: gymnax/CartPole)")
    p.add_argument("--model", default="reference", help="'reference' (default), 'oracle', 'real' or PATH.py")
    p.add_argument("--steps", type=int, help="model steps per seed (default: per-env preset, 500000)")
    p.add_argument("--seeds", type=int, default=16, help="seeds trained at once (default 16)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--evals", type=int, default=10, help="points on the learning curve (default 10)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--plot", metavar="PATH", help="plot the learning curve (PNG)")
    p.add_argument("--save", metavar="PATH", help="save the parameters (for `cwm-jax plan --value learned PATH`)")


def training_env(spec, model: str, say=print):
    """(env, env_params, description, action_fn for the real env)."""
    from cwm_jax.gymnax_env import CWMEnv

    if model == "real":
        env, params = spec.make_gymnax()
        return env, params, f"the real gymnax env {spec.gymnax_id}", None
    step_fn, desc = load_model(spec, model, say=say, warn=command.warning)
    env = CWMEnv(spec, step_fn)
    return env, env.default_params, desc, spec.to_gymnax_action


def run(args: argparse.Namespace) -> int:
    """`cwm-jax train`: errors are raised (UsageError, CWMError) for `command.run_guarded` to print."""
    outputs.check_files(args.json, args.plot, args.save)

    def say(text: str) -> None:
        print(text, flush=True)

    record, save, draw = train(args, say)
    written = [outputs.write_output(path, write, say=say, error=command.error, what=what, suffix=suffix)
               for path, write, what, suffix in (
                   (args.save, save, "the trained parameters", ".ppo"),
                   (args.json, lambda p: outputs.write_json(p, record), "the JSON record", ".json"),
                   (args.plot, draw, "the plot", ".png")) if path]
    return command.EXIT_OK if all(written) else command.EXIT_FAILED


def train(args: argparse.Namespace, say=print) -> tuple[dict[str, Any], Callable[[str], None], Callable[[str], None]]:
    """Everything but argument parsing, error printing and the output files.

    Returns:
      (the JSON record, a function saving the best seed's parameters to a path, one drawing the curve).
    """
    import jax
    import numpy as np

    import planners
    from cwm_jax import envs
    from planners import ppo

    if args.seeds < 1 or args.evals < 1:
        raise UsageError("--seeds and --evals must be >= 1")
    spec = envs.env_spec(args.env)
    settings = dict(PRESETS.get(spec.name, {}))
    if args.steps is not None:
        settings["total_timesteps"] = args.steps
    config = ppo.PPOConfig(**{**settings, "num_evals": args.evals})
    if config.num_updates < args.evals:
        raise UsageError(f"--steps {config.total_timesteps} gives {config.num_updates} updates, fewer than --evals")
    if config.model_steps != config.total_timesteps:
        say(f"note: {config.total_timesteps:,} steps round down to {config.model_steps:,} model steps per seed: "
            f"{args.evals} evaluation stretches of whole PPO updates ({config.num_envs} envs x "
            f"{config.num_steps} steps = {config.num_envs * config.num_steps:,} per update)")

    say(f"environment: {spec.name}; training in {args.model!r} ...")
    env, env_params, desc, action_fn = training_env(spec, args.model, say)
    say(f"training env: {desc}")
    real_env, real_params = spec.make_gymnax()
    network, to_env_action = ppo.network_for(env, env_params, config.hidden)

    def real_episode(params, key):
        policy = ppo.make_policy(network, params, to_env_action=to_env_action)
        return planners.make_episode_fn(
            real_env, real_params, policy, obs_fn=spec.flatten_obs, action_fn=action_fn
        )(key)

    train = jax.jit(jax.vmap(ppo.make_train(env, env_params, config,
                                            eval_fn=lambda p, k: real_episode(p, k).episode_return)))
    keys = planners.seed_keys(args.seeds, args.seed)
    say(f"PPO: {args.seeds} seeds x {config.model_steps:,} model steps; compiling ...")
    with command.progress(f"training ({config.model_steps:,} model steps per seed; compile, then train)"):
        out, compile_seconds, seconds = compile_then_run(
            train, keys, on_compiled=lambda compile_s: say(f"compiled in {compile_s:.1f} s; training ...")
        )

    final = jax.jit(jax.vmap(real_episode))(out.params, jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys))
    returns = np.asarray(final.episode_return, np.float64)
    steps_per_seed = config.model_steps
    curve_steps = [config.steps_per_eval * (i + 1) for i in range(args.evals)]
    eval_curve = np.asarray(out.eval_return, np.float64).mean(axis=0)
    model_curve = np.nanmean(np.asarray(out.model_return, np.float64), axis=0)

    say(f"\nlearning curve ({spec.name}, trained in {args.model}, mean over {args.seeds} seeds)")
    say(f"  {'model steps':>12} {'real-env return':>16} {'return in training env':>23}")
    for s, r, m in zip(curve_steps, eval_curve, model_curve):
        say(f"  {s:>12,} {r:>16.1f} {m:>23.1f}")
    say(
        f"\nfinal greedy policy, real env: {returns.mean():.1f} ± {returns.std():.1f} over {args.seeds} seeds "
        f"(min {returns.min():.1f}); {steps_per_seed:,} model steps per seed, "
        f"{steps_per_seed * args.seeds:,} in all; compile {compile_seconds:.1f} s, train {seconds:.1f} s"
    )
    record = {
        "env": spec.id,
        "model": args.model,
        "model_description": desc,
        "seeds": args.seeds,
        "base_seed": args.seed,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()},
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "returns": returns.tolist(),
        "model_steps": steps_per_seed,
        "model_steps_total": steps_per_seed * args.seeds,
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "curve": {"model_steps": curve_steps, "real_return": eval_curve.tolist(), "model_return": model_curve.tolist()},
        "device": str(jax.devices()[0]),
    }
    # The seed with the best final return in the TRAINING env (no real-env selection).
    best = int(np.nanargmax(np.asarray(out.model_return)[:, -1]))
    if args.save:
        record["saved"] = {"path": args.save, "seed": best}

    def save(path: str) -> None:
        params = jax.tree.map(lambda x: x[best], out.params)
        ppo.save(path, network, params, {
            "env": spec.id, "obs_dim": spec.obs_dim, "model": args.model, "seed": best,
            "gamma": config.gamma, "reward_scale": config.reward_scale, "model_steps": steps_per_seed,
        })

    def draw(path: str) -> None:
        write_learning_curve(path, spec.name, args.model, curve_steps, eval_curve, model_curve)

    return record, save, draw
