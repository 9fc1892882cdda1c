"""The process-wide default pool and the module-level functions that use it.

`score_source`, `score_file` and `fit_source` score or fit on one Sandbox
(size 1, default limits) shared by the whole process, started on first use
(only for a program that validates) and closed at exit. This is what
`python -m cwm_jax check` and `fit` run.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence

from cwm_jax import envs
from cwm_jax.score.accuracy import Tolerance
from cwm_jax.errors import CWMLoadError
from cwm_jax.fit.fitting import FitReport
from cwm_jax.sandbox.pool import Sandbox
from cwm_jax.validate.validator import static_rejection
from cwm_jax.score.scoring import ScoreResult, rejected

__all__ = ["close_default_sandbox", "default_sandbox", "fit_source", "score_file", "score_source"]

_DEFAULT: Sandbox | None = None
_DEFAULT_LOCK = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide Sandbox (size 1, default limits), started on first use, closed at exit."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT.closed:
            _DEFAULT = Sandbox()
        return _DEFAULT


def close_default_sandbox() -> None:
    """Stops the process-wide Sandbox if it was started (also runs at exit)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is not None:
            _DEFAULT.close()
            _DEFAULT = None


def score_source(
    source: str,
    env: str | envs.EnvSpec,
    *,
    splits: Sequence[str] = ("train",),
    counterexamples: int = 1,
    timeout_s: float | None = None,
    tolerance: Tolerance = Tolerance(),
    export: bool = False,
) -> ScoreResult:
    """`Sandbox.score` on the process-wide default sandbox (started only for programs that validate)."""
    error = static_rejection(source)
    if error is not None:
        return rejected(error)
    return default_sandbox().score(source, env, splits=splits, counterexamples=counterexamples, timeout_s=timeout_s,
                                   tolerance=tolerance, export=export)


def score_file(
    path: str | os.PathLike,
    env: str | envs.EnvSpec,
    *,
    split: str = "train",
    counterexamples: int = 1,
    timeout_s: float | None = None,
    tolerance: Tolerance = Tolerance(),
) -> ScoreResult:
    """Scores the CWM in a file through the default sandbox (what `python -m cwm_jax check` runs).

    A missing or unreadable file gives ScoreResult(valid=False, error_kind="load").
    """
    from cwm_jax.validate.loader import read_cwm_file

    try:
        source = read_cwm_file(path)  # its size is checked before it is read
    except CWMLoadError as exc:
        return rejected(exc)
    return score_source(source, env, splits=(split,), counterexamples=counterexamples, timeout_s=timeout_s,
                        tolerance=tolerance)


def fit_source(source: str, env: str | envs.EnvSpec, *, timeout_s: float | None = None,
               tolerance: Tolerance = Tolerance()) -> FitReport:
    """`Sandbox.fit` on the process-wide default sandbox (started only for programs that validate)."""
    error = static_rejection(source)
    if error is not None:
        return FitReport.rejected(source, error)
    return default_sandbox().fit(source, env, timeout_s=timeout_s, tolerance=tolerance)


atexit.register(close_default_sandbox)
