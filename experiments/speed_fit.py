"""Benchmark: fitting the constants of a CWM (`cwm_jax.fit.fitting`), per program and environment.

    python experiments/speed.py fit [--env gymnax/CartPole-unknown ...] [--json PATH]

Fits the textbook reference CWM of each environment to its train split (the
"-unknown" variants by default, plus CartPole with gravity 9.81 on the
default CartPole), twice in one process with JAX's persistent compilation
cache switched on (a fresh temporary directory):

- cold: the first fit, XLA compiles included (what a new program costs);
- warm: the same fit again, the compiled XLA programs read from the cache
  (tracing and everything else still run): the fit's own time "after
  compile".

Prints before/after strict accuracy on train and held-out test, the changed
constants and the seconds per stage. The reference CWMs are trusted code, so
this runs in-process; `Sandbox.fit` adds one request to a warm worker.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

import jax

from cwm_jax import envs, reference
from cwm_jax.fit import fitting as fit

DEFAULT_CASES = [spec.id for spec in envs.VARIANT_SPECS] + ["gymnax/CartPole:gravity-9.81"]


def case_source(case: str) -> tuple[str, str]:
    """(env id, source) of a benchmark case: `ENV` (the textbook reference) or `gymnax/CartPole:gravity-9.81`."""
    env, _, variant = case.partition(":")
    source = reference.source(env)
    if variant == "gravity-9.81":
        source = source.replace("GRAVITY = 9.8", "GRAVITY = 9.81")
    elif variant:
        raise SystemExit(f"unknown case variant {variant!r}")
    return env, source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", dest="cases", nargs="+", default=DEFAULT_CASES, metavar="CASE",
                        help="environment ids (textbook reference CWM fitted to them); default: the -unknown "
                        "variants and gymnax/CartPole:gravity-9.81")
    parser.add_argument("--no-warm", action="store_true", help="only the cold fit")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def run(args: argparse.Namespace) -> list[dict]:
    cache = tempfile.mkdtemp(prefix="cwm-fit-cache-")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for case in args.cases:
        env, source = case_source(case)
        timings = []
        for attempt in range(1 if args.no_warm else 2):
            start = time.perf_counter()
            report = fit.fit_source(source, env)
            timings.append(time.perf_counter() - start)
            print(f"  {case} {'cold' if attempt == 0 else 'warm'}: {timings[-1]:.1f} s "
                  + " ".join(f"{k} {v:.1f}" for k, v in report.stages.items()), flush=True)
        b, a = report.before, report.after
        row = {
            "case": case, "cold_s": timings[0], "warm_s": timings[-1] if len(timings) > 1 else None,
            "stages_warm": report.stages, "exact": report.exact,
            "before": dataclasses.asdict(b), "after": dataclasses.asdict(a), "changed": list(report.changed),
        }
        rows.append(row)
        print(f"{case}: train strict {b.train_strict_accuracy:.4f} -> {a.train_strict_accuracy:.4f}, "
              f"held-out strict {b.test_strict_accuracy:.4f} -> {a.test_strict_accuracy:.4f}; "
              + ", ".join(f"{c['name']} {c['old']:g} -> {c['new']:g}" for c in report.changed), flush=True)
    print(f"\n{'case':<40}{'cold s':>8}{'warm s':>8}{'test strict':>13}")
    for row in rows:
        warm = f"{row['warm_s']:.1f}" if row["warm_s"] is not None else "-"
        print(f"{row['case']:<40}{row['cold_s']:>8.1f}{warm:>8}{row['after']['test_strict_accuracy']:>13.4f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args())
