"""Chance in the world (issue 23, docs/chance.md): the acceptance figures on SlipperyGrid or Blackjack, in one run.

    python experiments/chance.py [--seeds 16] [--simulations 32] [--json PATH] [--plot PATH]
    python experiments/chance.py --env blackjack [--seeds 4000] [--simulations 64] [--json PATH]

SlipperyGrid (the default):

1. Held-out likelihood (test split) of: the true environment's chance model,
   the reference chance CWM, a model with wrong probabilities (slides 0.05),
   the same after the maximum-likelihood fit, and the best deterministic
   model (the ice never slides: the most likely outcome, always).
2. Planning, acting in the real environment, `--seeds` seeds, the same
   stochastic MCTS (`planners.stochastic_mcts`, leaf value
   `slippery_grid.distance_value`, the same for every model) with each model
   as its model; and mctx's deterministic MCTS with the deterministic model.
   Ratio of the reference's mean return to the true model's.
`--plot` writes the reliability diagram (calibration) of the reference and
the wrong model as a PNG.

Blackjack (`gymnasium/Blackjack-v1`, `experiments/chance_blackjack.py`): the
likelihood against the real env sampled, the fit on the project's splits and
on a large recording, and planning in the real env (`--seeds` episodes per
planner, the same deals for all).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GRID = "gymnax/SlipperyGrid"
WRONG_SLIP = 0.05



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chance.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", choices=("grid", "blackjack"), default="grid",
                        help="SlipperyGrid (default) or gymnasium's Blackjack-v1")
    parser.add_argument("--seeds", type=int, help="episodes per model in the real env (default 16; blackjack 4000)")
    parser.add_argument("--simulations", type=int,
                        help="MCTS simulations per real step (default 32; blackjack 64)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write the reliability diagram as a PNG")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.env == "blackjack":
        from chance_blackjack import run  # experiments/ is sys.path[0] when this runs as a script

        return run(seeds=args.seeds or 4000, simulations=args.simulations or 64, json_path=args.json)
    args.seeds, args.simulations = args.seeds or 16, args.simulations or 32
    import numpy as np

    import planners
    from cwm_jax import check, envs, reference
    from cwm_jax.data.transitions import load_split
    from cwm_jax.envs import slippery_grid
    from cwm_jax.fit import fitting
    from cwm_jax.score import likelihood
    from cwm_jax.validate import chance
    from planners.stochastic_mcts import make_stochastic_mcts_planner

    spec = envs.env_spec(GRID)
    test = load_split(spec, "test")
    wrong_source = reference.source(spec).replace(f"SLIP = {slippery_grid.SLIP}", f"SLIP = {WRONG_SLIP}")
    fitted = fitting.fit_source(wrong_source, spec)
    (change,) = fitted.changed
    models = {
        "true environment": chance.ChanceModel(*slippery_grid.TRUE_MODEL),
        "reference CWM": chance.load_chance_cwm(reference.source(spec), spec),
        f"wrong (slide {WRONG_SLIP})": chance.load_chance_cwm(wrong_source, spec),
        f"fitted (slide {change['new']:.4f})": chance.load_chance_cwm(fitted.program, spec),
        "deterministic": chance.load_chance_cwm(reference.deterministic_source(GRID), spec),
    }
    figures = {"fit": {"slip_before": WRONG_SLIP, "slip_after": change["new"], "slip_true": slippery_grid.SLIP},
               "likelihood": {}, "planning": {}}
    reports = {}
    print(f"held-out likelihood, {len(test)} transitions of {GRID} (test split)")
    print(f"  {'model':<26} {'log-lik':>8} {'± s.e.':>7} {'support':>8} {'ECE':>6} {'value':>6} {'accuracy':>8}")
    for name, model in models.items():
        reports[name] = report = likelihood.likelihood(model, test)
        summary = report.summary()
        floored = np.maximum(report.log_prob, np.log(likelihood.PROBABILITY_FLOOR))
        summary["standard_error"] = float(floored.std() / np.sqrt(len(floored)))
        summary["accuracy"] = check(chance.mode_step(model), test).accuracy
        figures["likelihood"][name] = summary
        print(f"  {name:<26} {summary['log_likelihood']:8.4f} {summary['standard_error']:7.4f} "
              f"{summary['support_accuracy']:8.3f} {summary['calibration_error']:6.3f} "
              f"{summary[likelihood.LIKELIHOOD_VALUE]:6.3f} {summary['accuracy']:8.3f}")
    print(f"fit: slide probability {WRONG_SLIP} -> {change['new']:.4f} (truth {slippery_grid.SLIP}); "
          f"held-out log-lik {fitted.likelihood['test_before']:.4f} -> {fitted.likelihood['test_after']:.4f}")

    env, params = spec.make_gymnax()

    def value(key, state):
        del key
        return slippery_grid.distance_value(state)

    planners_to_run = {name: make_stochastic_mcts_planner(model, num_actions=4, num_simulations=args.simulations,
                                                          value_fn=value)
                       for name, model in models.items() if not name.startswith("wrong")}
    planners_to_run["deterministic, mctx muzero MCTS"] = planners.make_mcts_planner(
        chance.mode_step(models["deterministic"]), num_actions=4, num_simulations=args.simulations, value_fn=value)
    print(f"\nplanning in the real environment, {args.seeds} seeds, {args.simulations} simulations per step")
    for name, plan in planners_to_run.items():
        start = time.perf_counter()
        result = planners.evaluate(env, params, plan, args.seeds, obs_fn=spec.flatten_obs)
        returns = np.asarray(result.episode_return)
        figures["planning"][name] = {"mean_return": float(returns.mean()), "std": float(returns.std()),
                                     "returns": returns.tolist(), "seconds": time.perf_counter() - start}
        print(f"  {name:<32} {returns.mean():6.3f} ± {returns.std():.3f}  ({time.perf_counter() - start:.1f} s)")
    true_return = figures["planning"]["true environment"]["mean_return"]
    ratio = figures["planning"]["reference CWM"]["mean_return"] / true_return if true_return > 0 else None
    figures["planning"]["reference_over_true"] = ratio
    print(f"  reference / true environment: {ratio:.3f}" if ratio is not None else "  ratio: N/A")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        for name in ("reference CWM", f"wrong (slide {WRONG_SLIP})", "deterministic"):
            predicted, observed, weight, ece = likelihood.calibration_table(reports[name])
            used = weight > 0
            ax.plot(predicted[used], observed[used], "o-", label=f"{name} (ECE {ece:.3f})")
        ax.set(xlabel="predicted probability", ylabel="observed frequency", title="SlipperyGrid, test split")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
