"""`python experiments/speed.py batch`: planning thousands of environments at once, as users do.

`planners.make_evaluate` (the early-exit `while_loop` episode, one row per
seed) and the PPO-style `planners.rollout` loop (a fixed-length `lax.scan`
with auto-reset, as `speed.py plan` times) on CartPole at N = 4,096 seeds and
more, for the random baseline, MCTS with rollouts (25 simulations, one random
rollout <= 100 steps) and MCTS with a learned value and prior (an untrained
PPO ActorCritic (64, 64): the cost of a trained one). Each episode is cut at
`--max-steps` real steps so that a CPU finishes; compile time apart, one
timed call after it, and the process's peak resident memory.
With `--devices D` the seeds are split over D devices (`planners.seed_mesh`);
on a CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=D` makes D of them.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", default="4096", help="comma-separated seed counts (default 4096)")
    parser.add_argument("--max-steps", type=int, default=10, help="real steps per episode at most (default 10)")
    parser.add_argument("--devices", type=int, default=1, help="devices to split the seeds over (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def _timed(fn, keys) -> tuple[float, float, object]:
    """(compile seconds, run seconds, output) of jitted `fn` on `keys`."""
    import jax

    start = time.perf_counter()
    compiled = fn.lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(keys))
    return compile_s, time.perf_counter() - start, out


def run(args: argparse.Namespace) -> dict:
    import jax

    import planners
    from cwm_jax import envs
    from cwm_jax.validate.loader import load_reference
    from speed import _planning_loop
    from speed_scaling import DEPTH, SIMS, _learned

    spec = envs.env_spec("gymnax/CartPole")
    env, params = spec.make_gymnax()
    step_fn = load_reference(spec)
    mesh = planners.seed_mesh(args.devices) if args.devices > 1 else None
    policies = {
        "random": (planners.random_policy(spec.random_action), 0),
        "mcts-rollouts": (planners.make_mcts_planner(step_fn, num_actions=2, num_simulations=SIMS,
                                                     rollout_depth=DEPTH), SIMS),
        "mcts-learned": (planners.make_mcts_planner(step_fn, num_actions=2, num_simulations=SIMS,
                                                    **_learned(spec)), SIMS),
    }
    record = {"device": str(jax.devices()[0]), "devices": args.devices, "max_steps": args.max_steps, "results": []}
    print(f"device: {record['device']} x {args.devices}; CartPole, episodes cut at {args.max_steps} steps", flush=True)
    for seeds in map(int, args.seeds.split(",")):
        keys = planners.seed_keys(seeds)
        for name, (policy, sims) in policies.items():
            for loop in ("evaluate", "rollout"):
                if loop == "evaluate":
                    fn = planners.make_evaluate(env, params, policy, obs_fn=spec.flatten_obs,
                                                max_steps=args.max_steps, mesh=mesh)
                else:
                    fn = _planning_loop(spec, policy, seeds, args.max_steps)
                compile_s, run_s, out = _timed(fn, keys)
                steps = int(out.length.sum()) if loop == "evaluate" else seeds * args.max_steps
                row = {"loop": loop, "policy": name, "seeds": seeds, "compile_s": compile_s, "run_s": run_s,
                       "real_steps": steps, "real_steps_per_s": steps / run_s, "sims_per_s": steps * sims / run_s,
                       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
                record["results"].append(row)
                print(f"  {loop:<8} {name:<13} {seeds:>6} seeds: compile {compile_s:5.1f} s, run {run_s:7.2f} s, "
                      f"{row['real_steps_per_s']:>12,.0f} real steps/s, {row['sims_per_s']:>12,.0f} sims/s, "
                      f"peak RSS {row['peak_rss_mb']:,.0f} MB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return record
