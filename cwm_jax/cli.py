"""Command line: validate, load and score a CWM file; fit its constants; list the environments."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

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
    fit = commands.add_parser(
        "fit",
        help="fit the numeric constants of a CWM file to the train split",
        description="Fit the module-level numeric constants of a CWM file to the recorded train transitions "
        "(gradient fit plus a derivative-free search on accuracy, in the sandbox) and write the fitted "
        "program. The result never scores lower than the input on the train split.",
    )
    fit.add_argument("model", help="path to the CWM source file (.py)")
    fit.add_argument("--env", required=True, help=f"environment id, one of: {', '.join(envs.names())}")
    fit.add_argument("--out", metavar="FITTED.py", help="write the fitted program here (default: print nothing)")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    fit.add_argument("--timeout", type=float, default=None, metavar="S",
                     help="wall-clock limit of the fit in seconds (default: 300)")
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


def _progress(message: str, stop: threading.Event) -> None:
    """Prints `message` with the elapsed seconds on stderr every few seconds until `stop` is set."""
    start = time.monotonic()
    while not stop.wait(5.0):
        print(f"  {message}: {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def _fit(args) -> int:
    try:
        spec = envs.make(args.env)
    except envs.UnknownEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout is not None and args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    from cwm_jax import fit, sandbox, validator
    from cwm_jax.loader import read_cwm_file

    try:
        source = read_cwm_file(args.model)
        constants = fit.find_constants(validator.validate(source))  # static: nothing of the program runs here
    except CWMError as exc:
        report = fit.FitReport(valid=False, program="", error=str(exc), error_kind=exc.kind)
    else:
        names = ", ".join(c.name for c in constants) or "none"
        print(f"fitting {args.model} to the train split of gymnax/{spec.name} in the sandbox; "
              f"module-level constants: {names}", file=sys.stderr, flush=True)
        stop = threading.Event()
        ticker = threading.Thread(target=_progress, daemon=True,
                                  args=("fitting in the sandbox (worker start, compile, fit)", stop))
        ticker.start()
        try:
            report = sandbox.fit_source(source, spec, timeout_s=args.timeout)
        finally:
            stop.set()
    if report.valid and args.out:
        try:
            Path(args.out).write_text(report.program, encoding="utf-8")
        except OSError as exc:
            print(f"error: cannot write {args.out!r}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        payload = report.to_dict()
        payload.update(env=f"gymnax/{spec.name}", out=args.out if report.valid else None)
        print(json.dumps(payload))
    elif not report.valid:
        print(f"rejected: {report.error}", file=sys.stderr)
    else:
        b, a = report.before, report.after
        print(f"{args.model}: fitted to gymnax/{spec.name} in {report.seconds:.1f} s")
        print(f"  {'':<22}{'before':>8}{'after':>8}")
        for label, key in (("train accuracy", "train_accuracy"), ("train strict accuracy", "train_strict_accuracy"),
                           ("test accuracy", "test_accuracy"), ("test strict accuracy", "test_strict_accuracy")):
            print(f"  {label:<22}{getattr(b, key):>8.4f}{getattr(a, key):>8.4f}")
        for change in report.changed:
            print(f"  {change['name']} {change['old']!r} -> {change['new']!r}")
        if not report.changed:
            print("  no constant changed: the fit did not improve the program")
        print("  exact on train (strict accuracy 1.0)" if report.exact
              else "  not exact: strict train accuracy below 1.0")
        if args.out:
            print(f"  fitted program written to {args.out}")
    return 0 if report.valid else EXIT_REJECTED


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "envs":
        for spec in envs.ALL_SPECS:
            kind = f"{spec.num_actions} discrete actions" if spec.discrete else f"continuous action [{spec.action_dim}]"
            note = " (constants unknown)" if spec.gymnax_params else ""
            print(f"gymnax/{spec.name:<30} {spec.gymnax_id:<26} obs [{spec.obs_dim}], {kind}{note}")
        return 0
    if args.command == "fit":
        return _fit(args)
    return _check(args)
