"""The paper's Table 8 question, measured: planning with a CWM vs with the real gymnasium environment as the model.

    python experiments/speed.py gymnasium [--envs CartPole-v1,Pendulum-v1] [--batches 1,16] [--decisions 3]

The same planner (`cwm_jax.make_planner` defaults: MCTS for discrete
actions, CEM for continuous ones) decides from gymnasium start states, once
with the reference CWM (jitted, vmapped over the batch) and once with the
real environment stepped on the host through `jax.pure_callback`
(`cwm_jax.envs.gymnasium_source.real_step`: its state set from each
observation). Figures: decisions per second after compilation, and their
ratio (CWM / real environment).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--envs", default="CartPole-v1,Pendulum-v1", help="gymnasium ids (default CartPole-v1,Pendulum-v1)")
    p.add_argument("--batches", default="1,16", help="comma-separated batch sizes (default 1,16)")
    p.add_argument("--decisions", type=int, default=3, help="timed decisions per row, median taken (default 3)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def _decisions_per_s(plan, states, repeats: int) -> float:
    import jax

    decide = jax.jit(jax.vmap(plan))
    keys = jax.random.split(jax.random.key(0), states.shape[0])
    jax.block_until_ready(decide(keys, states))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(decide(keys, states))
        times.append(time.perf_counter() - start)
    return states.shape[0] / sorted(times)[len(times) // 2]


def run(args) -> None:
    import jax.numpy as jnp

    from cwm_jax import envs
    from cwm_jax.envs.gymnasium_source import real_step, start_states
    from cwm_jax.planning import make_planner
    from cwm_jax.validate.loader import load_reference

    rows = []
    print(f"{'env':<26} {'batch':>5} {'CWM dec/s':>11} {'real env dec/s':>15} {'ratio':>8}")
    for name in args.envs.split(","):
        spec = envs.env_spec(f"gymnasium/{name}")
        for batch in (int(b) for b in args.batches.split(",")):
            states = jnp.asarray(start_states(spec, batch, seed=0))
            cwm = _decisions_per_s(make_planner(spec, load_reference(spec)), states, args.decisions)
            real = _decisions_per_s(make_planner(spec, real_step(spec)), states, args.decisions)
            rows.append({"env": spec.id, "batch": batch, "cwm_decisions_per_s": cwm,
                         "real_env_decisions_per_s": real, "ratio": cwm / real})
            print(f"{spec.id:<26} {batch:>5} {cwm:>11.1f} {real:>15.2f} {cwm / real:>8.0f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
