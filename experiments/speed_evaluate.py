"""`python experiments/speed.py evaluate`: seconds of the 1st and 2nd `planners.evaluate` call.

The same `(env, params, policy)` evaluated twice in one process: a random
policy and a small MCTS planner on CartPole. The first call compiles; the
second shows whether the compiled function is reused (see docs/planning.md).
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, default=8, help="episodes per call (default 8)")
    parser.add_argument("--calls", type=int, default=2, help="evaluate calls per policy (default 2)")


def run(args: argparse.Namespace) -> None:
    import jax

    import planners
    from cwm_jax import envs

    spec = envs.env_spec("gymnax/CartPole")
    env, params = spec.make_gymnax()
    mcts = planners.make_mcts_planner(spec.oracle_step, num_actions=2, num_simulations=4, rollout_depth=5)
    print(f"device: {jax.devices()[0]}; jax {jax.__version__}; CartPole, {args.seeds} seeds per call", flush=True)
    for label, make_policy in (
        ("random", lambda: planners.random_policy(spec.random_action)),
        ("mcts (4 sims, rollouts <= 5)", lambda: mcts),
    ):
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            planners.evaluate(env, params, make_policy(), args.seeds, obs_fn=spec.flatten_obs)
            times.append(time.perf_counter() - start)
        print(f"  {label}: " + ", ".join(f"call {i + 1} {t:.2f} s" for i, t in enumerate(times)), flush=True)
