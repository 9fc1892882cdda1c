"""Synthesise a Code World Model with an LLM: GIF-MCTS or a baseline.

    cwm-jax synth --env gymnax/CartPole --method gif-mcts --budget 50 \\
        --base-url http://localhost:8000/v1 --model NAME --out runs/cartpole
    (or: python experiments/synth.py ...)

Writes best.py, summary.json, tree.jsonl, tree.html, checkpoint.json and
cache.sqlite to --out. A killed run continues with --resume (responses
already received are replayed from the cache, none is asked again); Ctrl-C
writes the outputs so far and says how to resume. Exit status: 0 a program
was found, 1 none was valid, 2 bad usage, 3 the endpoint failed, 130
interrupted. Then:

    cwm-jax check runs/cartpole/best.py --env gymnax/CartPole --split test
    cwm-jax plan --env gymnax/CartPole --model runs/cartpole/best.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cwm_jax.commands import common as command
from cwm_jax.commands import outputs
from cwm_jax.commands.common import EXIT_ENDPOINT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, error
from cwm_jax.errors import UsageError

__all__ = ["ablations_of", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cwm-jax synth` (and `python experiments/synth.py`)."""
    from cwm_jax.envs import DESCRIPTION_LEVELS
    from synth.search.methods import SEARCH_METHODS

    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    command.add_source_arguments(parser, description_file=True)  # one of --env, --data (unless --demo)
    parser.add_argument("--method", default="gif-mcts", choices=list(SEARCH_METHODS), help="search method (default: gif-mcts)")
    parser.add_argument("--budget", type=int, default=50, help="LLM calls (default: 50)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    parser.add_argument("--model", help="model name as the server knows it (required unless --demo)")
    parser.add_argument("--demo", action="store_true",
                        help="offline demo: a scripted model on a loopback server answers (no network, no real "
                             "LLM; CartPole only): its first program crashes, the search feeds the error back, ...")
    parser.add_argument("--api-key", help="API key (default: $OPENAI_API_KEY; local servers need none)")
    parser.add_argument("--concurrency", type=int, default=1, help="LLM calls in flight at once (default: 1)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search's random choices")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling (default: the server's; the paper used 0.8)")
    parser.add_argument("--max-tokens", type=int, default=4096,
                        help="completion limit per call, hidden reasoning tokens included (default: 4096; "
                             "the paper's 1500 cuts off an explanation plus an RK4 program)")
    parser.add_argument("--prefill", action="store_true",
                        help="start each answer (a python fence, or '## Error explanation') and let the server "
                             "continue it, as the paper did; needs a server that continues a final assistant "
                             "message (vLLM: sent as continue_final_message)")
    parser.add_argument("--cache", help="response cache file shared across runs (default: OUT/cache.sqlite)")
    parser.add_argument("--value", choices=("paper", "strict"), default="paper",
                        help="search value: the paper code's reward-weighted accuracy, or strict accuracy "
                             "(all of next state, reward and done right); both are reported (default: paper)")
    parser.add_argument("--paper-faithful", action="store_true",
                        help="GIF-MCTS's exact value rule: a child repeating its parent or a sibling counts "
                             "like any other (no plateau detection)")
    parser.add_argument("--no-fit", action="store_true",
                        help="no fit step: programs are not given constants fitted to the data (the paper)")
    parser.add_argument("--description", choices=DESCRIPTION_LEVELS, default="full",
                        help="what the prompts say about the environment: every constant and quirk (full), or "
                             "the Gymnasium documentation level of the paper: state, actions, reward, "
                             "termination, no constants (docs) (default: full)")
    command.add_tolerance_argument(parser, note="; recorded in summary.json")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request (default: 120)")
    parser.add_argument("--token-limit", type=int, help="stop once this many tokens were spent")
    parser.add_argument("--cost-limit", type=float, help="stop once this many dollars were spent (needs --prices)")
    parser.add_argument("--prices", type=float, nargs=2, metavar=("IN", "OUT"),
                        help="dollars per million prompt and completion tokens, to count cost")
    for method in SEARCH_METHODS.values():
        for flag, meaning in method.ablations.items():
            parser.add_argument(flag, action="store_true", help=f"{method.name} ablation: {meaning}")


def ablations_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The ablation flags given (`SearchMethod.ablations`); UsageError for one the chosen method does not have."""
    from synth.search.methods import SEARCH_METHODS

    given = tuple(flag for method in SEARCH_METHODS.values() for flag in method.ablations
                  if getattr(args, flag[2:].replace("-", "_")))
    for flag in given:
        if flag not in SEARCH_METHODS[args.method].ablations:
            raise UsageError(f"{flag} is an ablation of another method, not of {args.method}")
    return given


def _validate(args: argparse.Namespace) -> None:
    if not args.demo and ((args.env is None and args.data is None) or args.model is None):
        raise UsageError("--env (or --data) and --model are required (or --demo, for the offline demo)")
    if args.budget < 1:
        raise UsageError("--budget must be at least 1")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UsageError("--top-p must be in (0, 1]")
    command.tolerance_from(args)
    ablations_of(args)
    if args.cost_limit is not None and args.prices is None:
        raise UsageError("--cost-limit needs --prices IN OUT (dollars per million tokens)")


def run(args: argparse.Namespace) -> int:
    """`cwm-jax synth`; the exit status (cwm_jax/commands/common.py)."""
    _validate(args)
    if args.demo:
        return _demo(args)
    return _synthesize(args)


def _demo(args: argparse.Namespace) -> int:
    """`synth --demo`: the real search, sandbox and fit, answered by the scripted model of the tests."""
    from cwm_jax import envs
    from synth.testing import scripted_llm
    from synth.testing.llm_server import LLMTestServer

    if args.data is not None or (args.env is not None and envs.env_spec(args.env).name != "CartPole"):
        raise UsageError("--demo is scripted for gymnax/CartPole only")
    if args.model is not None or args.base_url is not None:
        raise UsageError("--demo answers with its own scripted model: leave out --model and --base-url")
    with LLMTestServer(responder=scripted_llm.responder) as server:
        args.env, args.model, args.base_url = "gymnax/CartPole", server.model, server.base_url
        print("demo: a scripted model on a loopback server answers (synth/testing/scripted_llm.py): its first "
              "program crashes, its fix is subtly wrong, and it is right only when shown a failing transition",
              flush=True)
        return _synthesize(args)


def _synthesize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from synth.llm.budget import Budget, Prices
    from synth.search.protocol import Sampling
    from synth.llm.client import LLMConfig, LLMError, LLMModelNotFound, LLMUnavailable
    from cwm_jax.sandbox import Sandbox
    from synth.search.run import SynthesisInterrupted, check_resumed_tolerance, synthesize

    spec = command.source_from(args, need_description=True)
    try:
        spec.description_for(args.description)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    if (out / "checkpoint.json").exists() and not args.resume:
        raise UsageError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    outputs.check_dirs(args.out)
    outputs.check_files(args.cache)
    tolerance = command.tolerance_from(args)
    if args.resume:
        try:
            check_resumed_tolerance(out, tolerance)
        except ValueError as exc:
            raise UsageError(f"{exc} (--tolerance)") from None
    prices = Prices(*args.prices) if args.prices else None
    config = LLMConfig(model=args.model, base_url=args.base_url, api_key=args.api_key, timeout=args.timeout,
                       prices=prices)
    limits = Budget(max_tokens=args.token_limit, max_cost=args.cost_limit)
    print(f"{args.method} on {spec.id}: budget {args.budget} calls to {args.model} at "
          f"{config.resolved_base_url()}, concurrency {args.concurrency}; output in {out}")
    print("starting the sandbox worker (imports JAX, loads the transitions)...", flush=True)
    bar = tqdm(total=args.budget, unit="call", dynamic_ncols=True)

    def on_node(harness, method) -> None:
        best = harness.best(method)
        bar.n = harness.calls
        bar.set_postfix_str((f"best train acc {best.value:.3f}" if best else "no valid program yet")
                            + f", tokens {harness.tokens}")
        bar.refresh()

    try:
        with Sandbox(warm_envs=[spec]) as box:
            # The real fitter: Sandbox.fit runs in the sandbox worker, where untrusted code runs.
            fitter = None if args.no_fit else box.fit
            print("fit step: " + ("off (--no-fit)" if args.no_fit else "on (constants fitted in the sandbox)")
                  + f"; description level: {args.description}", flush=True)
            result = synthesize(
                spec, method=args.method, budget=args.budget, llm=config, out_dir=out,
                concurrency=args.concurrency, resume=args.resume, seed=args.seed,
                sampling=Sampling(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                                  prefill=args.prefill),
                ablations=ablations_of(args), limits=limits, on_node=on_node, sandbox=box, value=args.value,
                paper_faithful=args.paper_faithful, fitter=fitter, cache=args.cache, description=args.description,
                tolerance=tolerance)
    except SynthesisInterrupted as exc:
        bar.close()
        s = exc.result.summary
        again = " ".join(a for a in args.arguments if a != "--resume")
        print(f"\ninterrupted after {s['calls']} calls; summary.json, tree.html and best.py so far are in {out}. "
              f"Continue with: {args.invocation} {again} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted before the search started; nothing to resume in {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (LLMUnavailable, LLMModelNotFound) as exc:
        bar.close()
        error(str(exc))
        return EXIT_ENDPOINT
    except LLMError as exc:
        bar.close()
        error(f"the LLM endpoint failed: {exc}")
        return EXIT_ENDPOINT
    bar.close()
    s = result.summary
    cost = f", ${s['cost']:.4f}" if s["cost"] is not None else ""
    print(f"\nstopped: {s['stop_reason']}; {s['calls']} calls ({s['failed_calls']} failed), {s['fits']} fits, "
          f"{s['tokens']} tokens{cost}, {s['wall_seconds']:.1f} s")
    if result.best_program is None:
        print(f"no valid program within the budget; everything is kept in {out} (tree.jsonl, tree.html)",
              file=sys.stderr)
        return EXIT_FAILED
    values = s["values"]
    test = values["test"] or {}
    print(f"best program: node {s['best_node']} ({s['best_action']}); search value {s['value']}; "
          + "; ".join(f"{name}: train {values['train'][name]:.4f}, test "
                      + (f"{test[name]:.4f}" if name in test else "n/a") for name in values["train"]))
    print(f"wrote {out / 'best.py'}, summary.json, tree.jsonl, tree.html")
    if spec.source == "data":  # nothing to plan in: score it on the held-out episodes
        check = f"{args.root} check" if args.root else "python -m cwm_jax check"
        print(f"check it on the held-out episodes: {check} {out / 'best.py'} --data {args.data} --split test")
        return EXIT_OK
    plan = f"{args.root} plan" if args.root else "python experiments/plan.py"
    print(f"plan with it: {plan} --env {args.env} --model {out / 'best.py'}")
    return EXIT_OK
