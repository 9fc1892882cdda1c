"""Command line: validate, load and score a CWM file."""

from __future__ import annotations

import argparse
import json
import sys

from cwm_jax import accuracy, data, envs
from cwm_jax.errors import CWMError

EXIT_REJECTED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cwm_jax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check",
        help="validate, load and score a CWM file against recorded transitions",
        description="Validate a CWM file against the jax-subset rules, check its contract for the "
        "environment, and score it on a split of recorded transitions.",
    )
    check.add_argument("model", help="path to the CWM source file (.py)")
    check.add_argument("--env", required=True, help=f"environment id, one of: {', '.join(envs.names())}")
    check.add_argument("--split", default="train", choices=data.SPLITS, help="transitions to score on (default: train)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    check.add_argument("--counterexamples", type=int, default=1, metavar="K",
                       help="failing transitions to show in text mode (default: 1)")
    commands.add_parser("envs", help="list the registered environments")
    return parser


def _check(args) -> int:
    try:
        spec = envs.make(args.env)
    except envs.UnknownEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from cwm_jax import sandbox

    result = sandbox.score_file(args.model, spec, split=args.split, counterexamples=args.counterexamples)
    if args.json:
        payload = {"valid": result.valid, "error": result.error, "env": f"gymnax/{spec.name}", "split": args.split}
        keys = ("accuracy", "strict_accuracy", "state_accuracy", "reward_accuracy", "done_accuracy",
                "weighted_accuracy", "n_transitions")
        payload.update({k: (result.summary or {}).get(k) for k in keys})
        print(json.dumps(payload))
    elif not result.valid:
        print(f"rejected: {result.error}", file=sys.stderr)
    else:
        s = result.summary
        print(f"{args.model}: valid CWM for gymnax/{spec.name}")
        print(f"split {args.split}: {s['n_transitions']} transitions")
        for key in ("accuracy", "strict_accuracy", "state_accuracy", "reward_accuracy", "done_accuracy",
                    "weighted_accuracy"):
            print(f"  {key:<18} {s[key]:.4f}")
        if result.counterexamples:
            print("\nfirst failing transitions:\n" + result.counterexamples)
    return 0 if result.valid else EXIT_REJECTED


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "envs":
        for spec in envs.SPECS:
            kind = f"{spec.num_actions} discrete actions" if spec.discrete else f"continuous action [{spec.action_dim}]"
            print(f"gymnax/{spec.name:<24} {spec.gymnax_id:<26} obs [{spec.obs_dim}], {kind}")
        return 0
    return _check(args)
