"""Benchmark: wall-clock of GIF-MCTS against a slow scripted LLM, concurrency 1 vs k.

    python experiments/speed.py synth [--budget 20] [--delay 2.0] [--concurrency 1 4]

A scripted model on a loopback server answers every call after a fixed delay
with a valid but imperfect CartPole program (a different wrong gravity each
time), so the search never stops early and runs its whole budget. Reported:
wall-clock per concurrency level, the speed-up, and the search's own overhead
per call (everything but waiting for the LLM, split into scoring in the
sandbox and the search itself).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# experiments/synth.py is named like the `synth` package: put the repository
# root before this folder on the import path so `import synth`
# resolve to the packages, while the other experiments stay importable.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _responder():
    from synth.testing.scripted_llm import WRONG

    counter = itertools.count()

    def respond(request: dict) -> str:
        gravity = 9.81 + 0.01 * next(counter)
        return "```python\n" + WRONG.replace("GRAVITY = 9.81", f"GRAVITY = {gravity:.2f}") + "```\n"

    return respond


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=int, default=20, help="LLM calls per run (default: 20)")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the scripted LLM takes per answer")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="levels to compare")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def run(args: argparse.Namespace) -> dict:
    from cwm_jax import reference
    from cwm_jax.sandbox import Sandbox
    from synth.llm.client import LLMConfig
    from synth.search.run import synthesize
    from synth.testing.llm_server import LLMTestServer

    rows = []
    with Sandbox(size=2, warm_envs=["CartPole"]) as box, \
            LLMTestServer(responder=_responder(), latency=args.delay) as server:
        # Warm every worker first, so no run pays for start-up or first compilations.
        with ThreadPoolExecutor(box.size) as pool:
            list(pool.map(lambda _: box.score(reference.source("CartPole"), "CartPole"), range(box.size)))
        for k in args.concurrency:
            with tempfile.TemporaryDirectory() as out:
                config = LLMConfig(model=server.model, base_url=server.base_url)
                result = synthesize("gymnax/CartPole", method="gif-mcts", budget=args.budget, llm=config,
                                    out_dir=out, concurrency=k, sandbox=box)
            s = result.summary
            # Sequential only at k = 1: there, wall - LLM wait - scoring is the search's own time.
            search_s = s["wall_seconds"] - s["llm_seconds"] - s["scoring_seconds"] if k == 1 else None
            rows.append({"concurrency": k, "calls": s["calls"], "wall_s": s["wall_seconds"],
                         "llm_wait_s_total": s["llm_seconds"], "scoring_s_total": s["scoring_seconds"],
                         "scoring_s_per_call": s["scoring_seconds"] / s["calls"],
                         "search_overhead_s_per_call": search_s / s["calls"] if search_s is not None else None,
                         "best_train_accuracy": s["train_accuracy"]})
            print(f"concurrency {k}: {s['calls']} calls in {s['wall_seconds']:.1f} s", flush=True)
    base = rows[0]["wall_s"]
    print(f"\nscripted LLM delay {args.delay} s per call, budget {args.budget}")
    print(f"{'k':>3} {'wall s':>8} {'speed-up':>9} {'scoring s/call':>15} {'search overhead s/call':>23}")
    for row in rows:
        row["speedup"] = base / row["wall_s"]
        print(f"{row['concurrency']:>3} {row['wall_s']:>8.1f} {row['speedup']:>8.2f}x "
              f"{row['scoring_s_per_call']:>15.3f} "
              + (f"{row['search_overhead_s_per_call']:>23.4f}" if row["search_overhead_s_per_call"] is not None
                 else f"{'(k=1 only)':>23}"))
    result = {"benchmark": "synth", "delay_s": args.delay, "budget": args.budget, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args())
