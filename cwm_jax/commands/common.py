"""What every `cwm-jax` subcommand shares: exit statuses and how an error is printed.

The rule (docs/guide.md, "The `cwm-jax` command"): a subcommand returns

- 0 when it did its job;
- 1 when it ran and the result is negative: the model was rejected (a
  `CWMError`, which includes a missing or unreadable model file, since the
  model is what the user must fix) or a search found no valid program;
- 2 for bad usage: a malformed option, an unknown environment, a value out of
  range, an output directory that does not exist (a `UsageError`). Nothing
  was run. The message is ONE line: `error: ...`;
- 3 when the LLM endpoint failed (synth, bench);
- 130 when interrupted (Ctrl-C), with one line on stderr and no traceback.

Ctrl-C, one mechanism. A command run as a process (`main` without argv)
ends at once on SIGINT (`exit_on_interrupt`): a thread woken by the signal
flushes stdout, writes `interrupted` and leaves through `os._exit(130)`. The
signal can arrive while XLA compiles or runs on its own threads; raised as
KeyboardInterrupt there, it either waited for the C call to return, was
swallowed (`Exception ignored in: _xla_gc_callback`, the command then ran to
the end with exit 0) or crashed the interpreter's teardown (`double free or
corruption`, `pure virtual method called`, exit 134/139). `synth` and `bench`
save partial results on Ctrl-C, so they keep KeyboardInterrupt, and their
process still ends through `leave` (os._exit after an interrupt). Sandbox
workers notice their parent's exit by themselves (their request pipe hangs
up) and remove their directories.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from typing import TYPE_CHECKING

from cwm_jax.errors import CWMError, DeterminismWarning, SandboxError, UsageError
from cwm_jax.validate.text import printable, source_lines

if TYPE_CHECKING:
    from cwm_jax.envs import EnvSpec
    from cwm_jax.score.accuracy import Tolerance

__all__ = [
    "add_source_arguments",
    "source_from",
    "EXIT_ENDPOINT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ArgumentParser",
    "add_tolerance_argument",
    "error",
    "exit_on_interrupt",
    "leave",
    "progress",
    "run_guarded",
    "tolerance_from",
    "warning",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ENDPOINT = 3
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors raised as `UsageError` (one line, exit 2) instead of usage text and SystemExit."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def one_line(message: object) -> str:
    """`message` as one printable line: its lines joined with ' | ', control characters escaped.

    Messages quote untrusted text (a rejected program's line, an LLM's
    answer): printed raw, an escape sequence in it could rewrite the screen.
    """
    return printable(" | ".join(line.strip() for line in source_lines(str(message)) if line.strip()))


def error(message: object) -> None:
    """Prints `error: message` on stderr, as one line (`one_line`)."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)


def warning(message: object) -> None:
    """Prints `warning: message` on stderr, as one line: the command goes on, but the result needs a look."""
    print(f"warning: {one_line(message)}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def progress(message: str, *, every: float = 10.0) -> Iterator[None]:
    """While the block runs, `  message: N s` on stderr every `every` seconds (long jitted calls say nothing else).

    The one progress mechanism of the commands: plan, train, check, fit and bench use it.
    """
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(every):
            print(f"  {message}: {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    ticker = threading.Thread(target=tick, name="cwm-jax-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()


def run_guarded(body: Callable[[], int]) -> int:
    """`body()`, with the rule above applied to what it raises."""
    from cwm_jax.envs import UnknownEnvError

    try:
        with warnings.catch_warnings():  # restores showwarning on the way out
            warnings.simplefilter("always", DeterminismWarning)
            default_show = warnings.showwarning

            def show(message, category, *rest, **kwargs):
                if issubclass(category, DeterminismWarning):
                    warning(message)  # one `warning:` line, like the commands' own
                else:
                    default_show(message, category, *rest, **kwargs)

            warnings.showwarning = show
            return body()
    except (UsageError, UnknownEnvError) as exc:
        error(" ".join(str(exc).split()))  # one line, whatever the message held
        return EXIT_USAGE
    except CWMError as exc:
        error(str(exc))
        return EXIT_FAILED
    except SandboxError as exc:  # the sandbox itself failed (no worker starts): not the model's fault
        error(f"the sandbox failed: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # RuntimeError: a reentrant flush
            pass


def exit_on_interrupt() -> None:
    """From now on SIGINT ends this process at once: stdout flushed, `interrupted` on stderr, exit 130.

    The signal's C handler writes to a pipe (`signal.set_wakeup_fd`) that a
    daemon thread reads, so the exit does not wait for the main thread to
    come back from XLA. Call it from the main thread of a process entry point only.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.signal(signal.SIGINT, lambda signum, frame: None)  # the Python-level handler: the thread does the work
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def watch() -> None:
        while signal.SIGINT not in os.read(read_end, 64):
            pass
        _flush_stdio()
        os.write(2, b"interrupted\n")
        os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="cwm-jax-interrupt", daemon=True).start()


def leave(status: int) -> int:
    """`status` for `sys.exit`, as the process ends; after an interrupt the process ends here (`os._exit`).

    Called once, by the process's entry point (never by a command run in-process, as the tests run them).
    """
    _flush_stdio()
    if status == EXIT_INTERRUPTED:
        os._exit(status)
    return status


def add_tolerance_argument(parser: argparse.ArgumentParser, *, note: str = "") -> None:
    """`--tolerance TOL`, read back with `tolerance_from(args)` (synth, check and fit share it)."""
    parser.add_argument("--tolerance", type=float, metavar="TOL",
                        help="how close a predicted state and reward must be to count as right: "
                             "|pred - true| <= TOL + TOL * |true| (rtol = atol = TOL for state and reward; "
                             f"default: 1e-5, cwm_jax.score.accuracy.Tolerance){note}")


def tolerance_from(args: argparse.Namespace) -> Tolerance:
    """The `Tolerance` that `--tolerance` asks for; UsageError for a negative or non-finite value."""
    from cwm_jax.score.accuracy import Tolerance

    if args.tolerance is None:
        return Tolerance()
    try:
        return Tolerance.uniform(args.tolerance)
    except ValueError:
        raise UsageError(f"--tolerance must be a finite number >= 0, got {args.tolerance}") from None


def add_source_arguments(parser: argparse.ArgumentParser, *, description_file: bool = False) -> None:
    """`--env ENV` or `--data PATH` (and `--description-file FILE`), read back with `source_from(args)`."""
    parser.add_argument("--env", help="environment id: gymnax/<Name>, gymnasium/<id> (`cwm-jax envs` lists them)")
    parser.add_argument("--data", metavar="PATH",
                        help="a recorded dataset instead of --env: a .npz file with its .json sidecar, or "
                             "minari/<dataset_id> (docs/datasets.md); split by episode into train and test")
    if description_file:
        parser.add_argument("--description-file", metavar="FILE",
                            help="a text file describing the environment for the LLM, in place of the built-in "
                                 "description (or the dataset's)")


def source_from(args: argparse.Namespace, *, need_description: bool = False) -> EnvSpec:
    """The spec that `--env` or `--data` (and `--description-file`) name; UsageError for bad or missing ones.

    A dataset is read, checked, split and registered here (`cwm_jax.data.datasets.load_dataset`).
    """
    import dataclasses

    from cwm_jax import envs

    if (args.env is None) == (args.data is None):
        raise UsageError("give the environment with --env ENV or a recorded dataset with --data PATH (one of them)")
    description = None
    if getattr(args, "description_file", None):
        try:
            description = Path(args.description_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--description-file {args.description_file}: cannot read it: {exc}") from None
        if not description:
            raise UsageError(f"--description-file {args.description_file} is empty")
    if args.data is not None:
        from cwm_jax.data.datasets import load_dataset

        spec = load_dataset(args.data, description=description)
    else:
        spec = envs.env_spec(args.env)
        if description:  # one text for both description levels
            spec = dataclasses.replace(spec, description=description, docs_description=description)
    if need_description and not spec.description:
        raise UsageError(f"{spec.id} has no description for the LLM: pass --description-file FILE "
                         "(or put \"description\" in the dataset's sidecar)")
    return spec
