"""cwm-jax: Code World Models in JAX. An LLM writes an environment's dynamics as a jax.numpy
program; cwm-jax checks it, scores it on recorded transitions, fits its constants and plans with it.

    cwm-jax plan --env gymnax/CartPole          plan with a world model; compare with random and the oracle
    cwm-jax envs [ENV]                          the environments; one environment's description and state layout
    cwm-jax check MODEL.py --env ENV            validate a world-model file and score it on recorded transitions
    cwm-jax fit MODEL.py --env ENV --out F.py   fit a world model's numeric constants to the recorded transitions
    cwm-jax synth --env ENV --model NAME --out DIR   have an LLM write a world model (GIF-MCTS or a baseline)
    cwm-jax train --env ENV                     train PPO inside a world model; evaluate it in the real env
    cwm-jax bench ...                           the benchmark tables: methods x environments x seeds

`cwm-jax SUBCOMMAND --help` for the options. Exit status: 0 done, 1 negative result (model rejected,
nothing found), 2 bad usage (nothing run), 3 the LLM endpoint failed, 130 interrupted.
"""

# Code layout: each subcommand module has `add_arguments(parser)` and `run(args) -> int`; errors and exit
# statuses follow one rule for all of them (cwm_jax/commands/common.py). This module is the application's
# shell: the one place in `cwm_jax` that imports `synth` (lazily, for the synth and bench subcommands).

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from cwm_jax.commands import common as command
from cwm_jax.commands import outputs
from cwm_jax.errors import CWMError, SandboxError, UsageError
from cwm_jax.validate.text import printable

__all__ = ["HELP", "SAVES_ON_INTERRUPT", "build_parser", "main", "parse_args", "script"]

HELP = {
    "plan": "plan with a CWM in the real env; compare with random and the oracle",
    "synth": "synthesise a CWM with an LLM (GIF-MCTS or a baseline)",
    "check": "validate, load and score a CWM file against recorded transitions",
    "fit": "fit the numeric constants of a CWM file to the train split",
    "envs": "list the environments, or show one's description and state layout",
    "bench": "the benchmark: methods x environments x seeds -> tables",
    "train": "train PPO inside a CWM; evaluate the policy in the real env",
}

# Subcommands that catch KeyboardInterrupt to save what they did so far; the others end at once on Ctrl-C.
SAVES_ON_INTERRUPT = frozenset({"synth", "bench"})


def _subcommand(name: str) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
    """(add_arguments, run) of one subcommand, imported only when it is the one asked for."""
    if name == "plan":
        from cwm_jax.commands import plan as module
    elif name == "train":
        from cwm_jax.commands import train as module
    elif name == "synth":
        from cwm_jax.commands import synth as module
    elif name == "bench":
        from cwm_jax.commands import bench as module
    else:
        return {"check": (_check_arguments, _check), "fit": (_fit_arguments, _fit),
                "envs": (_envs_arguments, _envs)}[name]
    return module.add_arguments, module.run


def build_parser(command_name: str | None = None, *, prog: str = "cwm-jax",
                 script: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command_name`'s options are added (the others need heavy imports for their help).

    `script`: the experiments/ file that runs `command_name`, named in its usage line.
    """
    from cwm_jax import __version__

    parser = command.ArgumentParser(prog=prog, description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cwm-jax {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(HELP) + "}")
    for name, text in HELP.items():
        sub = commands.add_parser(name, help=text, description=text,
                                  prog=script if name == command_name and script else None)
        sub.set_defaults(invocation=sub.prog, root=None if script else prog)
        if name == command_name:
            add_arguments, _ = _subcommand(name)
            add_arguments(sub)
    return parser


def parse_args(argv: list[str], *, prog: str = "cwm-jax", script: str | None = None) -> argparse.Namespace:
    """`cwm-jax ARGV...` parsed as `main` parses it, and nothing run (the docs test checks command lines with it).

    Raises:
      UsageError: a malformed command line (unknown option, bad value).
    """
    command_name = next((a for a in argv if not a.startswith("-")), None)
    if command_name not in HELP:
        command_name = None
    return build_parser(command_name, prog=prog, script=script).parse_args(argv)


def main(argv: list[str] | None = None, *, prog: str = "cwm-jax", script: str | None = None,
         entry: bool | None = None) -> int:
    """`cwm-jax ARGV...`: the exit status (cwm_jax/commands/common.py); never raises SystemExit, even for --help.

    `entry` (default: no `argv` given, as the `cwm-jax` script and `python -m cwm_jax` call it): this
    call is the process's entry point, so Ctrl-C ends the process at once (`command.exit_on_interrupt`)
    and the status goes through `command.leave`. Tests call `main(argv)` in-process, without either.
    """
    entry = argv is None if entry is None else entry
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        try:
            args = parse_args(argv, prog=prog, script=script)
        except SystemExit as done:  # --help, --version
            return int(done.code or 0)
        args.arguments = argv[argv.index(args.command) + 1:]  # to repeat the command line (synth --resume)
        if entry and args.command not in SAVES_ON_INTERRUPT:
            command.exit_on_interrupt()
        return _subcommand(args.command)[1](args)

    status = command.run_guarded(body)
    return command.leave(status) if entry else status


def script(command_name: str, prog: str, argv: list[str] | None = None) -> int:
    """An experiments/ wrapper: `prog ARGV...` is `cwm-jax COMMAND ARGV...` (the process's entry point)."""
    return main([command_name, *(sys.argv[1:] if argv is None else argv)], script=prog, entry=True)


def _check_arguments(check: argparse.ArgumentParser) -> None:
    from cwm_jax.sandbox import DEFAULT_TIMEOUT_S
    from cwm_jax.data import transitions as data

    check.description = ("Validate a CWM file against the jax-subset rules, check its contract for the "
                         "environment, and score it on a split of recorded transitions.")
    check.add_argument("model", help="path to the CWM source file (.py)")
    command.add_source_arguments(check)
    check.add_argument("--split", default="train", choices=data.SPLITS, help="transitions to score on (default: train)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    check.add_argument("--counterexamples", type=int, default=1, metavar="K",
                       help="failing transitions to show in text mode (default: 1)")
    check.add_argument("--timeout", type=float, default=None, metavar="S",
                       help="wall-clock limit of the scoring (load, compile, score) in seconds "
                            f"(default: {DEFAULT_TIMEOUT_S:g})")
    command.add_tolerance_argument(check)


def _fit_arguments(fit: argparse.ArgumentParser) -> None:
    fit.description = ("Fit the module-level numeric constants of a CWM file to the recorded train transitions "
                       "(gradient fit plus a derivative-free search on accuracy, in the sandbox) and write the "
                       "fitted program. The result never scores lower than the input on the train split.")
    fit.add_argument("model", help="path to the CWM source file (.py)")
    command.add_source_arguments(fit)
    fit.add_argument("--out", metavar="FITTED.py", help="write the fitted program here (default: print nothing)")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    fit.add_argument("--timeout", type=float, default=None, metavar="S",
                     help="wall-clock limit of the fit in seconds (default: 300)")
    command.add_tolerance_argument(fit, note="; the fit maximises accuracy at this tolerance")


# Scored by likelihood (a stochastic environment or a CWM with chance; docs/chance.md).
LIKELIHOOD_KEYS = ("log_likelihood", "support_accuracy", "calibration_error", "likelihood_value")


def _check(args) -> int:
    from cwm_jax import sandbox
    from cwm_jax.models import non_finite_message
    from cwm_jax.score.scoring import ScoreResult

    spec = command.source_from(args)
    tolerance = command.tolerance_from(args)
    if args.counterexamples < 0:
        raise UsageError(f"--counterexamples must be >= 0, got {args.counterexamples}")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    try:
        with command.progress("scoring in the sandbox (worker start, compile, score)"):
            result = sandbox.score_file(args.model, spec, split=args.split, counterexamples=args.counterexamples,
                                        tolerance=tolerance, timeout_s=args.timeout)
    except SandboxError as exc:  # reported like a rejection, so --json still gives its object
        result = ScoreResult(valid=False, error=f"the sandbox failed: {exc}", error_kind="sandbox")
    if args.json:
        payload = {"valid": result.valid, "error": result.error, "env": spec.id, "split": args.split,
                   "tolerance": tolerance._asdict()}
        keys = ("accuracy", "strict_accuracy", "state_accuracy", "reward_accuracy", "done_accuracy",
                "weighted_accuracy", "n_transitions", "non_finite")
        payload.update({k: (result.summary or {}).get(k) for k in keys})
        payload.update({k: result.summary[k] for k in LIKELIHOOD_KEYS if k in (result.summary or {})})
        print(json.dumps(payload))
    elif not result.valid:
        command.error(f"rejected: {result.error}")
    else:
        s = result.summary
        print(f"{printable(args.model)}: valid CWM for {spec.id}")
        print(f"split {args.split}: {s['n_transitions']} transitions")
        for key in ("accuracy", "strict_accuracy", "state_accuracy", "reward_accuracy", "done_accuracy",
                    "weighted_accuracy") + tuple(k for k in LIKELIHOOD_KEYS if k in s):
            print(f"  {key:<18} {s[key]:.4f}")
        if s.get("non_finite"):
            command.warning(non_finite_message(s["non_finite"], s["n_transitions"], args.split))
        if result.counterexamples:
            print("\nfirst failing transitions:\n" + printable(result.counterexamples))
    return command.EXIT_OK if result.valid else command.EXIT_FAILED


def _fit(args) -> int:
    from cwm_jax import sandbox
    from cwm_jax.fit import fitting as fit
    from cwm_jax.fit.constants import find_constants, non_finite_constants
    from cwm_jax.validate import validator

    spec = command.source_from(args)
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    tolerance = command.tolerance_from(args)
    outputs.check_files(args.out)
    from cwm_jax.validate.loader import read_cwm_file

    try:
        source = read_cwm_file(args.model)
        tree = validator.validate(source)  # static: nothing of the program runs here
        constants = find_constants(tree)
    except CWMError as exc:
        report = fit.FitReport(valid=False, program="", error=str(exc), error_kind=exc.kind)
    else:
        names = ", ".join(c.name for c in constants) or "none"
        print(f"fitting {printable(args.model)} to the train split of {spec.id} in the sandbox; "
              f"module-level constants: {names}", file=sys.stderr, flush=True)
        for name, text in non_finite_constants(tree):
            command.warning(f"{name} = {text} is not a finite number: it cannot be fitted (give it a starting value)")
        try:
            with command.progress("fitting in the sandbox (worker start, compile, fit)", every=5.0):
                report = sandbox.fit_source(source, spec, timeout_s=args.timeout, tolerance=tolerance)
        except SandboxError as exc:  # reported like a rejection, so --json still gives its object
            report = fit.FitReport(valid=False, program=source, error=f"the sandbox failed: {exc}",
                                   error_kind="sandbox")
    written = True
    if report.valid and args.out:
        written = outputs.write_output(args.out, lambda path: Path(path).write_text(report.program, encoding="utf-8"),
                                       say=lambda text: None, error=command.error, what="the fitted program",
                                       suffix=".py")
    if args.json:
        payload = report.to_dict()
        payload.update(env=spec.id, out=args.out if report.valid else None, tolerance=tolerance._asdict())
        print(json.dumps(payload))
    elif not report.valid:
        command.error(f"rejected: {report.error}")
    else:
        b, a = report.before, report.after
        print(f"{printable(args.model)}: fitted to {spec.id} in {report.seconds:.1f} s")
        print(f"  {'':<22}{'before':>8}{'after':>8}")
        for label, key in (("train accuracy", "train_accuracy"), ("train strict accuracy", "train_strict_accuracy"),
                           ("test accuracy", "test_accuracy"), ("test strict accuracy", "test_strict_accuracy")):
            print(f"  {label:<22}{getattr(b, key):>8.4f}{getattr(a, key):>8.4f}")
        for split in ("train", "test") if report.likelihood else ():  # fitted by likelihood (docs/chance.md)
            print(f"  {split + ' log-likelihood':<22}{report.likelihood[split + '_before']:>8.4f}"
                  f"{report.likelihood[split + '_after']:>8.4f}")
        for change in report.changed:
            print(f"  {change['name']} {change['old']!r} -> {change['new']!r}")
        if not report.changed:
            print("  no constant changed: the fit did not improve the program")
        for group in report.confounded:
            print(f"  not identifiable from these data: {', '.join(group)} can move together without changing "
                  "any prediction; the data fix a combination of them, not each value, so a fitted value "
                  "need not be the true one")
        print("  exact on train (strict accuracy 1.0)" if report.exact
              else "  not exact: strict train accuracy below 1.0")
        if args.out and written:
            print(f"  fitted program written to {printable(args.out)}")
    return command.EXIT_OK if report.valid and written else command.EXIT_FAILED


def _envs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", nargs="?", help="an environment id: print its description (state layout, actions, "
                                              "reward, termination), as the LLM is given it")
    parser.add_argument("--level", choices=("full", "docs"), default="full",
                        help="full: every constant and quirk; docs: the Gymnasium documentation level (default: full)")


def _envs(args) -> int:
    from cwm_jax import envs

    if args.env:
        spec = envs.env_spec(args.env)
        kind = (f"{spec.num_actions} discrete actions" if spec.discrete
                else f"continuous action [{spec.action_dim}] in [{spec.action_low}, {spec.action_high}]")
        origin = f" ({spec.gymnax_id})" if spec.gymnax_id else ""
        print(f"{spec.id}{origin}: state float32 [{spec.obs_dim}], {kind}\n")
        try:
            print(spec.description_for(args.level).rstrip())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return command.EXIT_OK
    for spec in envs.ALL_SPECS:
        kind = f"{spec.num_actions} discrete actions" if spec.discrete else f"continuous action [{spec.action_dim}]"
        note = " (constants unknown)" if spec.gymnax_params else ""
        print(f"{spec.id:<37} {spec.gymnax_id:<26} obs [{spec.obs_dim}], {kind}{note}")
    from cwm_jax.envs import cwmb

    print("\nCWMB, the paper's benchmark (`bench --envs cwmb`; MuJoCo tasks need `pip install 'cwm-jax[mujoco]'`):")
    for found in cwmb.CWMB:
        renamed = "" if found.paper_id == found.gym_id else f" (the paper's {found.paper_id})"
        hidden = found.deterministic.split(":")[0]
        why = f"; not a function of (observation, action): {hidden}" if hidden else ""
        print(f"gymnasium/{found.gym_id:<27} {found.planner.upper()}{renamed}{why}")
    return command.EXIT_OK
