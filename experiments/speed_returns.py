"""`python experiments/speed.py returns`: MCTS variants, mean return over seeds and time per decision.

Plans with each environment's reference CWM in the real gymnax environment
(`planners.make_evaluate`, seeds 0..N-1, the same keys for every variant)
with `cwm-jax plan`'s MCTS defaults (muzero, 25 simulations, 32 random
rollouts <= 20 steps) and variants of them: Gumbel MuZero with fewer
simulations (mctx issue #48: Gumbel can learn with 2), muzero with fewer.
Compile time apart; run time of one call over all seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

VARIANTS = {
    "muzero-25": {},
    "muzero-8": {"num_simulations": 8},
    "gumbel-25": {"policy": "gumbel"},
    "gumbel-8": {"policy": "gumbel", "num_simulations": 8},
    "gumbel-4": {"policy": "gumbel", "num_simulations": 4},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--envs", default="gymnax/CartPole,gymnax/Acrobot", help="comma-separated env ids")
    parser.add_argument("--seeds", type=int, default=16, help="episodes per variant (default 16)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"some of {', '.join(VARIANTS)}")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def run(args: argparse.Namespace) -> dict:
    import jax
    import numpy as np

    import planners
    from cwm_jax import envs
    from cwm_jax.planning import make_planner
    from cwm_jax.validate.loader import load_reference

    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"error: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    keys = planners.seed_keys(args.seeds)
    record: dict = {"device": str(jax.devices()[0]), "seeds": args.seeds, "results": {}}
    print(f"device: {record['device']}; {args.seeds} seeds per variant, reference CWM", flush=True)
    for env_id in args.envs.split(","):
        spec = envs.env_spec(env_id)
        env, params = spec.make_gymnax()
        step_fn = load_reference(spec)
        record["results"][env_id] = {}
        for name in names:
            fields = VARIANTS[name]
            plan = make_planner(spec, step_fn, **fields)
            fn = planners.make_evaluate(env, params, plan, obs_fn=spec.flatten_obs, action_fn=spec.to_gymnax_action)
            start = time.perf_counter()
            compiled = fn.lower(keys).compile()
            compile_s = time.perf_counter() - start
            start = time.perf_counter()
            out = jax.block_until_ready(compiled(keys))
            run_s = time.perf_counter() - start
            returns = np.asarray(out.episode_return)
            sims = fields.get("num_simulations", 25)
            steps = int(np.asarray(out.length).sum())
            row = {"fields": fields, "mean_return": float(returns.mean()), "std_return": float(returns.std()),
                   "returns": returns.tolist(), "compile_s": compile_s, "run_s": run_s, "real_steps": steps,
                   "sims_per_s": steps * sims / run_s,
                   "ms_per_decision_batch": run_s / int(np.asarray(out.length).max()) * 1e3}
            record["results"][env_id][name] = row
            print(f"  {spec.name:<9} {name:<10}: return {row['mean_return']:8.1f} ± {row['std_return']:6.1f}, "
                  f"compile {compile_s:4.1f} s, run {run_s:6.2f} s, {row['ms_per_decision_batch']:6.2f} ms per "
                  f"decision (all {args.seeds} seeds), {row['sims_per_s']:>10,.0f} sims/s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return record
