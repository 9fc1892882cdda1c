"""Benchmark: the cost of scoring a CWM in a sandbox worker instead of in-process.

    python experiments/speed_sandbox.py [--runs 20] [--env gymnax/CartPole] [--json PATH]
    python experiments/speed.py sandbox ...   (the same, as a subcommand)

Scores the environment's reference CWM on the full train split `--runs`
times, each time with a fresh program text (a comment with the run number is
appended, so no compiled function is reused), two ways, interleaved:

(a) in-process: `cwm_jax.score.scoring.score_source` (trusted code only);
(b) sandboxed: `cwm_jax.sandbox.Sandbox.score` on one warm worker (static
    validation here, then load + compile + score in the worker, JSON reply).

Then, after the interleaved runs,
(c) in-process again after `gc.collect(); gc.freeze()`, which is what a worker
    does once it is warm: tracing allocates many objects and Python's cyclic
    collector otherwise rescans the whole JAX heap many times per scoring.
    (b) - (c) is the price of the process boundary alone.

Every path is warmed up with one untimed call first. Reports p50 / p95 / mean
wall time, the overhead of (b) over (a) and (c), and the one-off cost of
starting a worker (spawn -> JAX imported -> splits loaded -> ready), which is
also what replacing a killed worker costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

import jax
import numpy as np

from cwm_jax import envs, reference, sandbox
from cwm_jax.score import scoring
from cwm_jax.validate import validator
from cwm_jax.sandbox.testing import DebugSandbox


def _stats(seconds: list[float]) -> dict:
    values = np.asarray(seconds)
    return {
        "p50_s": float(np.percentile(values, 50)),
        "p95_s": float(np.percentile(values, 95)),
        "mean_s": float(values.mean()),
        "min_s": float(values.min()),
        "max_s": float(values.max()),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="gymnax/CartPole", help="environment with a reference CWM")
    parser.add_argument("--runs", type=int, default=20, help="timed scorings per path")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def run(args: argparse.Namespace) -> dict:
    spec = envs.env_spec(args.env)
    env_id = spec.id
    source = reference.source(spec)
    cpus = len(os.sched_getaffinity(0))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {cpus} CPUs; {env_id} reference CWM, "
          f"train split, {args.runs} runs per path")

    start = time.perf_counter()
    # DebugSandbox: the same workers plus an `info` operation, to wait for a ready worker and time a bare round trip
    box = DebugSandbox(size=1, warm_envs=[env_id])
    try:
        box.worker_info()  # blocks until the worker is ready: imported, splits loaded, reference scored
        cold_start_s = time.perf_counter() - start

        first = scoring.score_source(source + "\n# warm-up\n", spec)  # untimed: in-process one-off compiles
        assert first.valid and first.value == 1.0, first.error
        warm = box.score(source + "\n# warm-up\n", spec)
        assert warm.valid and warm.value == 1.0, warm.error

        in_process, sandboxed, worker_side = [], [], []
        for i in range(args.runs):
            text = source + f"\n# run {i}\n"
            t = time.perf_counter()
            result = scoring.score_source(text, spec)
            in_process.append(time.perf_counter() - t)
            assert result.valid and result.value == 1.0, result.error

            t = time.perf_counter()
            result = box.score(text, spec)
            sandboxed.append(time.perf_counter() - t)
            worker_side.append(result.seconds)
            assert result.valid and result.value == 1.0, result.error
        n_transitions = result.summary["n_transitions"]
        round_trips = []
        for _ in range(50):  # acquire a worker, one small request and reply, release
            t = time.perf_counter()
            box.worker_info()
            round_trips.append(time.perf_counter() - t)
        validate = []
        for i in range(50):
            t = time.perf_counter()
            validator.validate(source + f"\n# {i}\n")
            validate.append(time.perf_counter() - t)
    finally:
        box.close()

    gc.collect()
    gc.freeze()
    frozen = []
    for i in range(args.runs):
        text = source + f"\n# frozen run {i}\n"
        t = time.perf_counter()
        result = scoring.score_source(text, spec)
        frozen.append(time.perf_counter() - t)
        assert result.valid and result.value == 1.0, result.error
    gc.unfreeze()

    rows = {"in_process": _stats(in_process), "sandbox": _stats(sandboxed), "in_process_frozen": _stats(frozen)}
    overhead = {
        "vs_in_process_p50_s": rows["sandbox"]["p50_s"] - rows["in_process"]["p50_s"],
        "vs_in_process_p95_s": rows["sandbox"]["p95_s"] - rows["in_process"]["p95_s"],
        "vs_in_process_ratio_p50": rows["sandbox"]["p50_s"] / rows["in_process"]["p50_s"],
        "vs_frozen_p50_s": rows["sandbox"]["p50_s"] - rows["in_process_frozen"]["p50_s"],
        "vs_frozen_p95_s": rows["sandbox"]["p95_s"] - rows["in_process_frozen"]["p95_s"],
    }
    print(f"\n{'path':<28} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'min ms':>9} {'max ms':>9}")
    for name, label in (("in_process", "(a) in-process"), ("sandbox", "(b) sandbox, warm worker"),
                        ("in_process_frozen", "(c) in-process, gc frozen")):
        r = rows[name]
        print(f"{label:<28} {r['p50_s'] * 1e3:>9.1f} {r['p95_s'] * 1e3:>9.1f} {r['mean_s'] * 1e3:>9.1f} "
              f"{r['min_s'] * 1e3:>9.1f} {r['max_s'] * 1e3:>9.1f}")
    print(f"\n(b) - (a): p50 {overhead['vs_in_process_p50_s'] * 1e3:+.1f} ms "
          f"({overhead['vs_in_process_ratio_p50']:.2f}x), p95 {overhead['vs_in_process_p95_s'] * 1e3:+.1f} ms")
    print(f"(b) - (c): p50 {overhead['vs_frozen_p50_s'] * 1e3:+.1f} ms, p95 {overhead['vs_frozen_p95_s'] * 1e3:+.1f} ms"
          f" (the process boundary alone); {n_transitions} transitions per scoring")
    print(f"process boundary: empty request round trip p50 {statistics.median(round_trips) * 1e3:.2f} ms; "
          f"static validation in the parent p50 {statistics.median(validate) * 1e3:.2f} ms")
    print(f"worker cold start (spawn, import JAX, load splits, score the reference once): {cold_start_s:.2f} s")
    print(f"memory cap per worker: {box.memory_limit / sandbox.GiB:.2f} GiB (RLIMIT_AS)")
    result = {
        "benchmark": "sandbox",
        "device": jax.devices()[0].platform,
        "cpus": cpus,
        "env": env_id,
        "runs": args.runs,
        "n_transitions": n_transitions,
        "in_process": rows["in_process"],
        "sandbox": rows["sandbox"],
        "in_process_frozen": rows["in_process_frozen"],
        "sandbox_worker_side_p50_s": statistics.median(worker_side),
        "overhead": overhead,
        "worker_cold_start_s": cold_start_s,
        "round_trip_p50_s": statistics.median(round_trips),
        "validate_p50_s": statistics.median(validate),
        "memory_limit_bytes": box.memory_limit,
        "raw_s": {"in_process": in_process, "sandbox": sandboxed, "in_process_frozen": frozen},
    }
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"wrote {args.json}")
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
