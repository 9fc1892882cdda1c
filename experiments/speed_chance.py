"""Stochastic MCTS vs deterministic MCTS: simulations per second on SlipperyGrid (docs/chance.md).

    python experiments/speed.py chance [--batches 1,16,256] [--steps 20] [--simulations 32]

With the same settings (simulations, leaf values from random rollouts of
`--rollout-depth` steps, discount 0.99, a fresh tree every real step), one
run times real steps of planning + acting for:
  (a) stochastic MCTS (`planners.stochastic_mcts`, mctx.stochastic_muzero_policy)
      with the reference chance CWM (C = 3),
  (b) the same with the true environment's chance model,
  (c) mctx's muzero MCTS (`planners.make_mcts_planner`) with the best
      deterministic model (the ice never slides).
A stochastic simulation adds one node (a decision or a chance node), runs
both recurrent functions and two leaf values; a real step is two tree levels.
Compile time is reported apart; figures are medians of `--repeats` calls.
"""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--batches", default="1,16,256", help="comma-separated batch sizes (default 1,16,256)")
    p.add_argument("--steps", type=int, default=20, help="real steps timed per row (default 20)")
    p.add_argument("--simulations", type=int, default=32, help="simulations per real step (default 32)")
    p.add_argument("--rollout-depth", type=int, default=20, help="random rollout length (default 20)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls, median taken (default 3)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def run(args) -> None:
    import jax

    import planners
    from cwm_jax import envs, reference
    from cwm_jax.envs import slippery_grid
    from cwm_jax.validate import chance
    from planners.stochastic_mcts import make_stochastic_mcts_planner
    from speed import measure_jax

    spec = envs.env_spec("gymnax/SlipperyGrid")
    sims, depth = args.simulations, args.rollout_depth
    policies = {
        "stochastic MCTS, reference CWM": make_stochastic_mcts_planner(
            chance.load_chance_cwm(reference.source(spec), spec), num_actions=4, num_simulations=sims,
            rollout_depth=depth, num_rollouts=1),
        "stochastic MCTS, true model": make_stochastic_mcts_planner(
            chance.ChanceModel(*slippery_grid.TRUE_MODEL), num_actions=4, num_simulations=sims,
            rollout_depth=depth, num_rollouts=1),
        "deterministic MCTS, deterministic CWM": planners.make_mcts_planner(
            chance.mode_step(chance.load_chance_cwm(reference.deterministic_source(spec), spec)), num_actions=4,
            num_simulations=sims, rollout_depth=depth, num_rollouts=1),
    }
    print(f"{jax.devices()[0].platform}, {sims} simulations per real step, rollouts of {depth} steps")
    print(f"  {'planner':<40} {'batch':>5} {'compile s':>9} {'sims/s':>10} {'ms/real step':>12}")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        for name, policy in policies.items():
            row = {"planner": name, **measure_jax(spec, policy, batch=batch, steps=args.steps,
                                                  repeats=args.repeats, sims_per_step=sims)}
            rows.append(row)
            print(f"  {name:<40} {batch:5d} {row['compile_seconds']:9.1f} {row['sims_per_s']:10,.0f} "
                  f"{1000 * row['s_per_real_step']:12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
