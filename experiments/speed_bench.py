"""Scaling figures of the benchmark (printed, not asserted).

    python experiments/speed_bench.py eval [--env gymnax/CartPole] [--seeds 64] [--devices 1 4]
    python experiments/speed_bench.py concurrency [--delay 0.5] [--levels 1 4]

eval: planning-evaluation throughput (seeds x real steps per second) with the
seeds split over 1 and 4 devices; CPU devices are forced with
XLA_FLAGS=--xla_force_host_platform_device_count (each count runs in its own
process, the flag must be set before JAX starts).
concurrency: wall-clock of the small benchmark (CartPole and Catch,
gif-mcts and worldcoder, 2 seeds, budget 3, no planning) against the scripted
model on loopback answering after a fixed delay, at each --concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(ROOT))

EVAL_CHILD = """
import json, sys, time
import jax, numpy as np
import planners
from cwm_jax import envs, load_reference
from cwm_jax.planning import evaluate, make_planner

env_id, seeds, devices = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spec = envs.env_spec(env_id)
mesh = planners.seed_mesh(devices) if devices > 1 else None
keys = planners.seed_keys(seeds)
ev = evaluate(spec, make_planner(spec, load_reference(spec)), keys, "model", lambda t: None, mesh=mesh)
steps = int(ev.lengths.sum())
print(json.dumps({"devices": devices, "seeds": seeds, "compile_s": ev.compile_seconds, "run_s": ev.run_seconds,
                  "steps": steps, "seed_steps_per_s": steps / ev.run_seconds, "mean_return": ev.mean,
                  "returns": ev.returns.tolist(), "platform": jax.devices()[0].platform}))
"""


def eval_throughput(args) -> None:
    results = []
    for count in args.devices:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={max(args.devices)}",
                   JAX_PLATFORMS="cpu")
        proc = subprocess.run([sys.executable, "-c", EVAL_CHILD, args.env, str(args.seeds), str(count)],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        if proc.returncode != 0:
            sys.exit(f"error: the {count}-device run failed:\n{proc.stderr[-2000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{args.env}, reference CWM, {args.seeds} seeds, default planner settings, {os.cpu_count()} CPU cores")
    print(f"{'devices':>7} {'compile s':>9} {'run s':>7} {'real steps':>10} {'seed-steps/s':>12} {'mean return':>11}")
    for r in results:
        print(f"{r['devices']:>7} {r['compile_s']:>9.1f} {r['run_s']:>7.2f} {r['steps']:>10} "
              f"{r['seed_steps_per_s']:>12.0f} {r['mean_return']:>11.1f}")
    same = all(r["returns"] == results[0]["returns"] for r in results)
    print(f"per-seed returns identical across device counts: {same}")


def concurrency_wallclock(args) -> None:
    from synth.bench.benchmark import run_benchmark
    from synth.bench.config import BenchConfig
    from synth.bench.methods import parse_method
    from synth.testing.llm_server import LLMTestServer
    from synth.testing.scripted_llm import bench_responder

    rows = []
    with LLMTestServer(responder=bench_responder, latency=args.delay) as server:
        for level in args.levels:
            config = BenchConfig(
                envs=("gymnax/CartPole", "gymnax/Catch"),
                methods=(parse_method("gif-mcts"), parse_method("worldcoder")), seeds=(0, 1), budget=3,
                model=server.model, base_url=server.base_url, concurrency=level, plan_seeds=0,
                sandbox_workers=args.sandbox_workers)
            server.reset_counts()
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                records = run_benchmark(config, out, say=lambda text: None)
                rows.append((level, time.perf_counter() - start, server.requests_total, len(records)))
    print(f"small benchmark: 2 envs x 2 methods x 2 seeds, budget 3, scripted model answering after "
          f"{args.delay} s, no planning, {args.sandbox_workers} sandbox worker(s)")
    print(f"{'concurrency':>11} {'wall s':>7} {'requests':>8} {'tasks':>5}")
    for level, wall, requests, tasks in rows:
        print(f"{level:>11} {wall:>7.1f} {requests:>8} {tasks:>5}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    ev = sub.add_parser("eval")
    ev.add_argument("--env", default="gymnax/CartPole")
    ev.add_argument("--seeds", type=int, default=64)
    ev.add_argument("--devices", type=int, nargs="+", default=[1, 4])
    co = sub.add_parser("concurrency")
    co.add_argument("--delay", type=float, default=0.5)
    co.add_argument("--levels", type=int, nargs="+", default=[1, 4])
    co.add_argument("--sandbox-workers", type=int, default=2)
    args = parser.parse_args(argv)
    (eval_throughput if args.what == "eval" else concurrency_wallclock)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
