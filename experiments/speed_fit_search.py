"""Measurement: GIF-MCTS with and without the fit step on the unknown-constants variants.

    python experiments/speed.py fit-search [--budget 3] [--envs gymnax/CartPole-unknown ...] [--json PATH]

A scripted model on a loopback server (`synth.testing.scripted_llm.textbook_responder`)
answers every call with the textbook reference CWM of the environment: the
structure is right, the constants are the textbook ones, not the variant's.
For each variant, GIF-MCTS runs twice with the same budget, with the real
fitter (`Sandbox.fit`, in the sandbox worker) and without (`--no-fit`, the
paper). Reported per run: LLM calls used, fit nodes and fit attempts, strict
accuracy of the best program on the train and held-out test splits, which
action made it, and the seconds (fit seconds apart). The fit times are cold:
each fit compiles its XLA programs (unless JAX's persistent cache has them).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

# Put the repository root first on the import path, so `import synth`
# resolves to the package (experiments/synth.py has the same name).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNKNOWN_ENVS = ("gymnax/CartPole-unknown", "gymnax/Acrobot-unknown", "gymnax/MountainCar-unknown",
                "gymnax/MountainCarContinuous-unknown", "gymnax/Pendulum-unknown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=int, default=3, help="LLM calls per run (default: 3)")
    parser.add_argument("--envs", nargs="+", default=list(UNKNOWN_ENVS), help="environments (default: all five)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def _row(env: str, fit: bool, summary: dict) -> dict:
    values = summary["values"]
    return {"env": env, "fit": fit, "calls": summary["calls"], "fits": summary["fits"],
            "fit_attempts": summary["fit_attempts"], "best_action": summary["best_action"],
            "train_strict": values["train"]["strict"] if values["train"] else None,
            "test_strict": values["test"]["strict"] if values["test"] else None,
            "stop_reason": summary["stop_reason"], "wall_s": summary["wall_seconds"],
            "fit_s": summary["fit_seconds"]}


def run(args: argparse.Namespace) -> dict:
    from cwm_jax.sandbox import Sandbox
    from synth.llm.client import LLMConfig
    from synth.search.run import synthesize
    from synth.testing.llm_server import LLMTestServer
    from synth.testing.scripted_llm import textbook_responder

    rows = []
    for env in args.envs:
        with Sandbox(warm_envs=[env]) as box, LLMTestServer(responder=textbook_responder(env)) as server:
            config = LLMConfig(model=server.model, base_url=server.base_url)
            for fit in (True, False):
                with tempfile.TemporaryDirectory() as out:
                    result = synthesize(env, method="gif-mcts", budget=args.budget, llm=config, out_dir=out,
                                        sandbox=box, fitter=box.fit if fit else None)
                row = _row(env, fit, result.summary)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\nGIF-MCTS, budget {args.budget}, scripted LLM writing the textbook CWM every call")
    print(f"{'env':<38} {'fit':>4} {'calls':>5} {'fits':>4} {'best':>9} {'train':>6} {'test':>6} "
          f"{'wall s':>7} {'fit s':>6}")
    for r in rows:
        train = "n/a" if r["train_strict"] is None else f"{r['train_strict']:.3f}"
        test = "n/a" if r["test_strict"] is None else f"{r['test_strict']:.3f}"
        print(f"{r['env']:<38} {'on' if r['fit'] else 'off':>4} {r['calls']:>5} {r['fits']:>4} "
              f"{str(r['best_action']):>9} {train:>6} {test:>6} {r['wall_s']:>7.1f} {r['fit_s']:>6.1f}")
    result = {"benchmark": "fit-search", "budget": args.budget, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args())
