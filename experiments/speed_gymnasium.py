"""Planning with a CWM vs with the real gymnasium environment as the model (the paper's Table 8 argument).

    python experiments/speed.py gymnasium [--quick] [--json PATH]

The same planner with the same settings (plan.py's defaults: MCTS on
gymnasium/CartPole-v1, CEM on gymnasium/Pendulum-v1), once with the
reference CWM (jitted jax) and once with the real gymnasium environment as
its model (`EnvSpec.oracle_step`: the env's state set from each observation
and stepped in Python through `jax.pure_callback`, one host call per vmapped
batch). One decision = one `plan(key, state)`; at batch B, B decisions are
one jitted, vmapped call. Reports decisions per second (compile apart,
median of repeats) and the ratio CWM / real env at each batch size.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

ENVS = ("gymnasium/CartPole-v1", "gymnasium/Pendulum-v1")
QUICK = {"mcts": {"num_simulations": 8, "rollout_depth": 10, "num_rollouts": 4},
         "cem": {"horizon": 15, "iterations": 3, "num_samples": 50, "num_elites": 5}}


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="smaller planner settings (see QUICK) and 1 repeat")
    p.add_argument("--batches", default="1,16", help="comma-separated batch sizes (default 1,16)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per figure, median taken (default 3)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def decisions_per_second(plan, states, repeats: int) -> tuple[float, float]:
    """(decisions/s, compile seconds) of jit(vmap(plan)) on states [B, obs_dim]."""
    import jax

    keys = jax.random.split(jax.random.key(0), states.shape[0])
    fn = jax.jit(jax.vmap(plan))
    start = time.perf_counter()
    compiled = fn.lower(keys, states).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(keys, states))  # warm the callback's env
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys, states))
        times.append(time.perf_counter() - start)
    return states.shape[0] / statistics.median(times), compile_s


def run(args) -> dict:
    import jax
    import numpy as np

    from cwm_jax import envs, planning
    from cwm_jax.validate.loader import load_reference

    batches = [int(b) for b in args.batches.split(",")]
    repeats = 1 if args.quick else args.repeats
    results = {"device": str(jax.devices()[0]), "envs": {}}
    for env_id in ENVS:
        spec = envs.env_spec(env_id)
        entry = planning.planner_for(spec)
        config = planning.planner_config(spec, **(QUICK[entry.name] if args.quick else {}))
        print(f"{env_id}: {entry.describe(config, 'rollouts')}")
        rows = {}
        for batch in batches:
            states = np.asarray(spec.start_states(batch), np.float32)
            row = {}
            for label, step in (("cwm", load_reference(spec)), ("real_env", spec.oracle_step)):
                rate, compile_s = decisions_per_second(planning.make_planner(spec, step, config), states, repeats)
                row[label] = {"decisions_per_s": rate, "compile_s": compile_s}
            row["ratio"] = row["cwm"]["decisions_per_s"] / row["real_env"]["decisions_per_s"]
            rows[batch] = row
            print(f"  batch {batch:>3}: CWM {row['cwm']['decisions_per_s']:>10.1f} decisions/s, real env "
                  f"{row['real_env']['decisions_per_s']:>8.2f} decisions/s, ratio {row['ratio']:,.0f}x")
        results["envs"][env_id] = {"settings": planning.settings_record(config), "batches": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return results
