"""MCTS leaf values: random rollouts vs a learned value and prior, in one run.

    python experiments/train.py --env gymnax/CartPole --save cartpole.ppo
    python experiments/speed.py value --params cartpole.ppo

Both planners use the reference CWM with the same tree settings (plan.py's
MCTS defaults: muzero, 25 simulations, discount 0.99); (a) values leaves with
plan.py's default rollouts (32 random rollouts of <= 20 steps), (b) with the
PPO critic and the PPO policy as prior (`planners.ppo`). Reports simulations
per second (compile apart, median of repeats) and model steps per decision,
counted: a host callback inside the model counts every executed call, for a
few decisions at batch 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--params", required=True, help="a train.py --save file for the env")
    p.add_argument("--env", default="gymnax/CartPole", help="environment id (default gymnax/CartPole)")
    p.add_argument("--batch", type=int, default=16, help="rows planned at once (default 16)")
    p.add_argument("--steps", type=int, default=50, help="real steps timed per row (default 50)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls, median taken (default 3)")
    p.add_argument("--count-steps", type=int, default=5, help="decisions whose model calls are counted (default 5)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def counting(step_fn, counter: list[int]):
    """step_fn that bumps counter[0] on every executed call (per row under vmap)."""
    import jax

    def bump(_):
        counter[0] += 1

    def step(state, action):
        jax.debug.callback(bump, state)
        return step_fn(state, action)

    return step


def run(args) -> dict:
    import jax

    from cwm_jax import envs
    from cwm_jax.validate.loader import load_reference
    from cwm_jax.errors import UsageError
    from cwm_jax.models import learned_value
    from cwm_jax.planning import planner_config
    from speed import measure_jax

    import planners

    spec = envs.env_spec(args.env)
    try:
        learned = learned_value(spec, ["learned", args.params])
    except UsageError as exc:
        raise SystemExit(f"error: {exc}") from None
    config = planner_config(spec, "mcts")  # the defaults of `cwm-jax plan`
    sims = config.num_simulations
    variants = {"rollouts": {"config": config}, "learned": {"config": config, **learned}}
    step_fn = load_reference(spec)
    device = str(jax.devices()[0])
    print(f"device: {device}; {spec.name}, reference CWM, muzero, {sims} simulations, batch {args.batch}", flush=True)
    record = {"env": spec.id, "device": device, "batch": args.batch, "simulations": sims, "results": {}}
    for name, kwargs in variants.items():
        plan = planners.make_mcts_planner(step_fn, **kwargs)
        timing = measure_jax(spec, plan, batch=args.batch, steps=args.steps, repeats=args.repeats, sims_per_step=sims)
        counter = [0]
        counted = planners.make_mcts_planner(counting(step_fn, counter), **kwargs)
        measure_jax(spec, counted, batch=1, steps=args.count_steps, repeats=1, sims_per_step=sims)
        # measure_jax compiles once (no call) and runs `repeats` calls.
        timing["model_steps_per_decision"] = counter[0] / args.count_steps
        record["results"][name] = timing
        print(
            f"  {name:<8}: compile {timing['compile_seconds']:.1f} s, {timing['sims_per_s']:,.0f} sims/s, "
            f"{timing['s_per_real_step'] * 1e3:.2f} ms per real step (batch), "
            f"{timing['model_steps_per_decision']:,.0f} model steps per decision",
            flush=True,
        )
    a, b = record["results"]["rollouts"], record["results"]["learned"]
    record["model_steps_ratio"] = a["model_steps_per_decision"] / b["model_steps_per_decision"]
    record["time_per_step_ratio"] = a["s_per_real_step"] / b["s_per_real_step"]
    print(
        f"  rollouts / learned: {record['model_steps_ratio']:,.0f}x the model steps per decision, "
        f"{record['time_per_step_ratio']:.1f}x the time per real step",
        flush=True,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return record


if __name__ == "__main__":
    sys.exit("run through: python experiments/speed.py value --params PATH")
