"""Fitting an approximate MuJoCo CWM (issue 21, docs/benchmark.md "CWMB"): error and planning, before and after.

    python experiments/cwmb_fit.py [--model experiments/models/half_cheetah_rough.py] \
        [--env gymnasium/HalfCheetah-v4] [--seeds 8] [--json PATH]

No model writes a MuJoCo task exactly, so strict accuracy stays 0; what the
fit can change is how close the predictions are. For the model as written
and after `cwm-jax fit` (in the sandbox): the paper's accuracy, strict
accuracy, the mean squared scaled error (the fit's loss: each element's
error over the spread of its change) and the RMS error of the next state
and the reward, on the held-out test split; then CEM (the environment's
CWMB settings) with each model, acting in the real environment, beside
random actions and the same CEM with the real environment as its model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cwmb_fit.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(HERE / "models" / "half_cheetah_rough.py"), help="approximate CWM")
    parser.add_argument("--env", default="gymnasium/HalfCheetah-v4", help="environment id")
    parser.add_argument("--seeds", type=int, default=8, help="planning episodes per model (default 8)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    return parser


def prediction_errors(step_fn, spec, split) -> dict[str, float]:
    """Held-out errors of an exported step: mean squared scaled error, RMS of the next state and the reward."""
    import jax
    import numpy as np

    from cwm_jax.fit.optimize import _scales

    next_state, reward, _ = jax.vmap(step_fn)(split.state, split.action)
    state_scale, reward_scale = _scales(split)
    scaled = np.concatenate([((np.asarray(next_state) - split.next_state) / state_scale).ravel(),
                             (np.asarray(reward) - split.reward) / reward_scale])
    return {"scaled_mse": float(np.mean(scaled ** 2)),
            "state_rmse": float(np.sqrt(np.mean((np.asarray(next_state) - split.next_state) ** 2))),
            "reward_rmse": float(np.sqrt(np.mean((np.asarray(reward) - split.reward) ** 2)))}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import planners
    from cwm_jax import envs, models, sandbox
    from cwm_jax.data.transitions import load_split
    from cwm_jax.planning import evaluate, evaluate_baselines, make_planner, normalized_return, planner_config

    spec = envs.env_spec(args.env)
    source = Path(args.model).read_text()
    test = load_split(spec, "test")
    start = time.perf_counter()
    report = sandbox.fit_source(source, spec)
    fit_seconds = time.perf_counter() - start
    print(f"fit: {fit_seconds:.1f} s, {len(report.changed)} constants changed"
          + "".join(f"\n  {c['name']} {c['old']:g} -> {c['new']:g}" for c in report.changed))
    config = planner_config(spec)
    keys = planners.seed_keys(args.seeds)
    say = print
    base = evaluate_baselines(spec, config, keys, say)
    figures = {"env": spec.id, "seeds": args.seeds, "fit_seconds": fit_seconds, "changed": list(report.changed),
               "random": base.random.mean, "oracle": base.oracle.mean, "models": {}}
    for name, program in (("as written", source), ("fitted", report.program)):
        step_fn, scored = models.sandboxed_step(program, spec)
        if step_fn is None:
            print(f"{name}: rejected: {scored.error}")
            return 1
        test_scored = sandbox.score_source(program, spec, splits=("test",), counterexamples=0)
        row = {**prediction_errors(step_fn, spec, test), "accuracy": test_scored.summaries["test"]["accuracy"],
               "strict_accuracy": test_scored.summaries["test"]["strict_accuracy"]}
        result = evaluate(spec, make_planner(spec, step_fn, config), keys, name, say)
        row.update(mean_return=result.mean, std_return=result.std,
                   normalized_return=normalized_return(result.mean, base.random.mean, base.oracle.mean))
        figures["models"][name] = row
    print(f"\n{spec.id}, held-out split ({len(test)} transitions); planning: {args.seeds} episodes in the real env, "
          f"random {base.random.mean:.1f}, oracle {base.oracle.mean:.1f}")
    print(f"| model | accuracy | strict | scaled MSE | state RMSE | reward RMSE | return | normalized |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in figures["models"].items():
        norm = "N/A" if row["normalized_return"] is None else f"{row['normalized_return']:.2f}"
        print(f"| {name} | {row['accuracy']:.3f} | {row['strict_accuracy']:.3f} | {row['scaled_mse']:.3f} "
              f"| {row['state_rmse']:.3f} | {row['reward_rmse']:.3f} | {row['mean_return']:.1f} ± "
              f"{row['std_return']:.1f} | {norm} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
