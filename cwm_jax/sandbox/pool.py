"""The pool: `Sandbox`, warm worker processes that score and fit untrusted CWM source.

The parent's side above the process boundary: validates a candidate here
(tier one, nothing of it runs), hands it to an idle worker
(`process.Worker`), enforces the wall-clock limit, and turns a worker that
timed out, ran out of memory or crashed into a ScoreResult an LLM can act
on (`messages`), replacing the worker.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Iterable, Sequence

from cwm_jax import envs
from cwm_jax.data.transitions import check_splits
from cwm_jax.score import accuracy
from cwm_jax.validate.validator import static_rejection
from cwm_jax.fit.fitting import FitReport
from cwm_jax.sandbox.isolation import GiB, ISOLATIONS, default_memory_limit, namespace_prefix
from cwm_jax.sandbox.messages import (
    SandboxClosedError,
    SandboxError,
    crash_message,
    fit_timeout_message,
    memory_message,
    timeout_message,
)
from cwm_jax.sandbox.process import Worker, WorkerDied, WorkerSet, result_from_dict, stop_at_exit
from cwm_jax.score.scoring import FEEDBACK, ScoreResult, rejected

__all__ = [
    "DEFAULT_FIT_TIMEOUT_S", "DEFAULT_MAX_TASKS_PER_WORKER", "DEFAULT_STARTUP_TIMEOUT_S", "DEFAULT_TIMEOUT_S",
    "DEFAULT_WARMUP_TIMEOUT_S", "Sandbox"
]

DEFAULT_TIMEOUT_S = 45.0
"""Wall-clock limit for one candidate: load, trace, compile and score.

45 s leaves a command that meets a runaway program (a Python integer squared
64 times at trace time) room for its own start, the worker's start and the
transitions' loading inside one minute (docs/sandbox.md); the heaviest
reference CWM here (gymnax/Swimmer) scores in about 10 s on a loaded 2-core
machine."""

DEFAULT_FIT_TIMEOUT_S = 300.0
"""Wall-clock limit for fitting one candidate's constants (`Sandbox.fit`): scoring twice, compiling, fitting."""

DEFAULT_STARTUP_TIMEOUT_S = 180.0
"""Limit for a worker to import JAX and warm up (not charged to a candidate)."""

DEFAULT_WARMUP_TIMEOUT_S = 600.0
"""Limit for loading (or first collecting) the transition splits of an env."""

DEFAULT_MAX_TASKS_PER_WORKER = 500
"""A worker is replaced after this many candidates, bounding slow leaks (jit caches)."""



class Sandbox:
    """A pool of warm worker processes that score untrusted CWM source.

    Thread-safe: up to `size` candidates are scored at once, further callers
    wait for a free worker. Call `score` from threads or with
    `await asyncio.to_thread(box.score, ...)` (or `await box.ascore(...)`).
    Close it (or use it as a context manager) to stop the workers; a Sandbox
    that is garbage-collected or still open at interpreter exit is closed too.

    Args:
      size: number of worker processes.
      timeout_s: default wall-clock limit per candidate (load + compile + score).
      memory_limit: address-space cap of each worker in bytes (RLIMIT_AS);
        None for `default_memory_limit()`, 0 for no cap.
      warm_envs: environments each worker warms up for as soon as it starts
        (loads their splits and scores the reference CWM once, so the first
        candidate pays no one-off compilation), replacements included.
      warm_splits: the splits loaded during that warm-up.
      startup_timeout_s: limit for a worker to start and warm up.
      warmup_timeout_s: limit for a worker to load (or first collect) the
        splits of an environment it has not seen yet, before a candidate.
      max_tasks_per_worker: replace a worker after this many candidates.
      isolation: "namespaces" starts each worker in new user, network and
        PID namespaces (`unshare`): no network, and no sight of (or signals
        to) any process outside the worker, the parent's /proc/PID/environ
        included. "process" is a plain child process. "auto" (default) uses
        namespaces where the kernel allows unprivileged user namespaces.
        `self.isolation` says which one is in force.
    """

    _test_ops = False  # workers serve the test operations; only cwm_jax.sandbox.testing.DebugSandbox sets it

    def __init__(
        self,
        size: int = 1,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_limit: int | None = None,
        warm_envs: Iterable[str | envs.EnvSpec] = (),
        warm_splits: Sequence[str] = ("train",),
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        warmup_timeout_s: float = DEFAULT_WARMUP_TIMEOUT_S,
        max_tasks_per_worker: int = DEFAULT_MAX_TASKS_PER_WORKER,
        isolation: str = "auto",
    ):
        if size < 1:
            raise ValueError("size must be at least 1")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.size = int(size)
        self.timeout_s = float(timeout_s)
        self.memory_limit = default_memory_limit() if memory_limit is None else int(memory_limit)
        self.warm_envs = tuple(envs.env_spec(env).id for env in warm_envs)
        self.warm_splits = tuple(check_splits(warm_splits))
        self.startup_timeout_s = float(startup_timeout_s)
        self.warmup_timeout_s = float(warmup_timeout_s)
        self.max_tasks_per_worker = int(max_tasks_per_worker)
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {isolation!r}")
        self._namespaces = None if isolation == "process" else namespace_prefix()
        if isolation == "namespaces" and self._namespaces is None:
            raise SandboxError("isolation='namespaces' needs util-linux `unshare` and unprivileged user "
                               "namespaces, which this system does not allow; use isolation='process'")
        self.isolation = "namespaces" if self._namespaces else "process"
        self._pool = WorkerSet()
        self._count = 0  # workers alive or starting (idle + busy)
        self._finalizer = weakref.finalize(self, self._pool.shutdown)
        stop_at_exit(self._pool)
        with self._pool.lock:
            for _ in range(self.size):  # start them now: JAX imports while the caller does other work
                self._pool.idle.append(self._spawn())
                self._count += 1

    # -- public API -----------------------------------------------------------

    def score(
        self,
        source: str,
        env: str | envs.EnvSpec,
        *,
        splits: Sequence[str] = ("train",),
        counterexamples: int = 1,
        timeout_s: float | None = None,
        tolerance: accuracy.Tolerance = accuracy.Tolerance(),
        export: bool = False,
        feedback: str = "first",
    ) -> ScoreResult:
        """Validates `source` here, then loads and scores it in a worker.

        Args:
          source: CWM module text (untrusted).
          env: environment id or spec.
          splits: splits to score on, as in `cwm_jax.score.scoring.score_source`.
          counterexamples: failing transitions to format for the LLM.
          timeout_s: wall-clock limit for load + compile + score (default: the
            Sandbox's); past it the worker is killed and replaced.
          tolerance: how close a predicted state and reward must be to count
            as right (`cwm_jax.score.accuracy.Tolerance`, validated when built).
          export: also return the scored artifact (`ScoreResult.artifact`,
            `cwm_jax.sandbox.artifact`): what a caller runs instead of the program.
          feedback: "first" or "diverse" counterexamples (`scoring.score_source`).

        Returns:
          The ScoreResult; `seconds` is the wall time of the validation here
          plus the request to the worker (waiting for a free worker, worker
          start-up and split loading are excluded: they are not the
          candidate's). Candidates that hang, exhaust memory or crash the
          worker get valid=False with error_kind "timeout", "memory" or
          "crash".

        Raises:
          SandboxError: no worker could be started (not the candidate's fault).
          envs.UnknownEnvError, ValueError: bad `env`, `splits` or `tolerance`.
        """
        spec = envs.env_spec(env)
        splits = check_splits(splits)
        if feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}, got {feedback!r}")
        limit = self.timeout_s if timeout_s is None else float(timeout_s)
        if limit <= 0:
            raise ValueError("timeout_s must be positive")
        start = time.perf_counter()
        error = static_rejection(source)
        if error is not None:
            return rejected(error, time.perf_counter() - start)
        message = {"op": "score", "source": source, "env": spec.id, "splits": list(splits),
                   "counterexamples": int(counterexamples), "tolerance": tolerance._asdict(), "export": bool(export),
                   "feedback": feedback}
        validated = time.perf_counter() - start
        result = self._run(message, spec, splits, limit)
        return dataclasses.replace(result, seconds=result.seconds + validated)

    def fit(self, source: str, env: str | envs.EnvSpec, *, timeout_s: float | None = None,
            tolerance: accuracy.Tolerance = accuracy.Tolerance()) -> FitReport:
        """Validates `source` here, then fits its numeric constants to the train split in a worker.

        See `cwm_jax.fit.fitting`. The worker scores the program on the train and test
        splits before and after the fit, and returns the input unchanged
        unless the fitted program scores higher on train.

        Args:
          source: CWM module text (untrusted).
          env: environment id or spec.
          timeout_s: wall-clock limit for the whole fit (default
            DEFAULT_FIT_TIMEOUT_S); past it the worker is killed and replaced.
          tolerance: what counts as right, in the fit's accuracy search and in
            the scores before and after it (as in `score`).

        Returns:
          A FitReport (`cwm_jax.fit.fitting.FitReport`); `program` is the input when
          it is invalid, when the fit failed or timed out, or when nothing
          improved.

        Raises:
          SandboxError: no worker could be started (not the candidate's fault).
          envs.UnknownEnvError, ValueError: bad `env` or `timeout_s`.
        """
        spec = envs.env_spec(env)
        limit = DEFAULT_FIT_TIMEOUT_S if timeout_s is None else float(timeout_s)
        if limit <= 0:
            raise ValueError("timeout_s must be positive")
        start = time.perf_counter()
        error = static_rejection(source)
        if error is not None:
            return FitReport.rejected(source, error, seconds=time.perf_counter() - start)
        # The candidate's own limit first: a program that cannot be scored in
        # `timeout_s` (one that runs away at trace time) must not hold the
        # command for the whole fit limit.
        scored = self._run({"op": "score", "source": source, "env": spec.id, "splits": ["train"],
                            "counterexamples": 0, "tolerance": tolerance._asdict(), "export": False},
                           spec, ("train", "test"), min(self.timeout_s, limit))
        if not scored.valid:
            fit_limit_hit = scored.error_kind == "timeout" and limit <= self.timeout_s
            error = fit_timeout_message(limit) if fit_limit_hit else scored.error
            return FitReport(valid=False, program=source, error=error, error_kind=scored.error_kind,
                             seconds=time.perf_counter() - start)
        message = {"op": "fit", "source": source, "env": spec.id, "tolerance": tolerance._asdict()}
        result = self._run(message, spec, ("train", "test"), limit)
        seconds = time.perf_counter() - start
        if "fit" in result.summaries:
            return dataclasses.replace(FitReport.from_dict(result.summaries["fit"]), seconds=seconds)
        error = fit_timeout_message(limit) if result.error_kind == "timeout" else result.error
        return FitReport(valid=False, program=source, error=error, error_kind=result.error_kind, seconds=seconds)

    async def ascore(self, source: str, env: str | envs.EnvSpec, **kwargs) -> ScoreResult:
        """`score` in a thread, for asyncio callers."""
        import asyncio

        return await asyncio.to_thread(self.score, source, env, **kwargs)

    def close(self) -> None:
        """Stops every worker (idle ones are asked to exit, busy ones killed). Idempotent."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._pool.closed

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (idle and busy)."""
        with self._pool.lock:
            return [w.pid for w in [*self._pool.idle, *self._pool.busy]]

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self._count} workers"
        return (f"Sandbox(size={self.size}, timeout_s={self.timeout_s:g}, "
                f"memory_limit={self.memory_limit / GiB:.2f} GiB, isolation={self.isolation!r}, {state})")

    # -- internal ---------------------------------------------------------------

    def _spawn(self) -> Worker:
        return Worker(memory_limit=self.memory_limit, warm_envs=self.warm_envs, warm_splits=self.warm_splits,
                      test_ops=self._test_ops, namespaces=self._namespaces)

    def _acquire(self) -> Worker:
        pool = self._pool
        with pool.lock:
            while True:
                if pool.closed:
                    raise SandboxClosedError("the Sandbox is closed")
                if pool.idle:
                    worker = pool.idle.pop()
                    break
                if self._count < self.size:
                    self._count += 1
                    try:
                        worker = self._spawn()
                    except BaseException:
                        self._count -= 1
                        raise
                    break
                pool.lock.wait()
            pool.busy.add(worker)
        if not worker.alive() and not worker.ready:
            pass  # it died while starting; wait_ready reports it
        elif not worker.alive():  # died while idle (e.g. the OOM killer): replace it
            self._release(worker, healthy=False)
            return self._acquire()
        return worker

    def _release(self, worker: Worker, healthy: bool) -> None:
        pool = self._pool
        replace = not healthy or worker.tasks >= self.max_tasks_per_worker
        if replace:
            worker.kill()
        with pool.lock:
            pool.busy.discard(worker)
            if pool.closed:
                if not replace:
                    worker.kill()
                self._count -= 1
            elif replace:
                try:  # replace it now: the new one imports JAX in the background
                    pool.idle.append(self._spawn())
                except OSError:
                    self._count -= 1
            else:
                pool.idle.append(worker)
            pool.lock.notify()

    def _run(self, message: dict, spec: envs.EnvSpec | None, splits: Sequence[str], timeout_s: float,
             retry: bool = True) -> ScoreResult:
        worker = self._acquire()
        healthy = False
        try:
            try:
                worker.wait_ready(self.startup_timeout_s)
            except (WorkerDied, TimeoutError) as exc:
                if self._pool.closed:
                    raise SandboxClosedError("the Sandbox was closed") from None
                description, detail, _ = worker.exit_description() if isinstance(exc, WorkerDied) else (
                    f"not ready after {self.startup_timeout_s:g} s", "", False)
                raise SandboxError(
                    f"a sandbox worker failed to start ({description}){': ' + detail if detail else ''}; "
                    f"if JAX cannot start under the memory limit ({self.memory_limit / GiB:.2f} GiB), raise "
                    "Sandbox(memory_limit=...)"
                ) from None
            if spec is not None:
                self._warm(worker, spec, splits)
            worker.mark_log()
            worker.tasks += 1
            sent = time.perf_counter()
            try:
                reply = worker.request(message, timeout_s)
            except TimeoutError:
                return ScoreResult(valid=False, error=timeout_message(timeout_s), error_kind="timeout",
                                   seconds=time.perf_counter() - sent)
            except WorkerDied:
                if self._pool.closed:
                    raise SandboxClosedError("the Sandbox was closed while scoring") from None
                description, detail, memory = worker.exit_description()
                seconds = time.perf_counter() - sent
                if memory:
                    return ScoreResult(valid=False, error=memory_message(self.memory_limit), error_kind="memory",
                                       seconds=seconds)
                return ScoreResult(valid=False, error=crash_message(description, detail), error_kind="crash",
                                   seconds=seconds)
            if not reply.get("ok"):
                raise SandboxError(f"the sandbox worker failed: {str(reply.get('error'))[:2000]}")
            result = dataclasses.replace(result_from_dict(reply.get("result")), seconds=time.perf_counter() - sent)
            if result.error_kind == "memory":
                result = dataclasses.replace(result, error=memory_message(self.memory_limit))
            healthy = not reply.get("recycle", False)
            return result
        finally:
            self._release(worker, healthy)

    def _warm(self, worker: Worker, spec: envs.EnvSpec, splits: Sequence[str]) -> None:
        env_id = spec.id
        missing = [split for split in splits if (env_id, split) not in worker.warmed]
        if not missing:
            return
        worker.provide_splits(env_id, missing)
        try:
            reply = worker.request({"op": "warm", "env": env_id, "splits": missing}, self.warmup_timeout_s)
        except (TimeoutError, WorkerDied) as exc:
            if self._pool.closed:
                raise SandboxClosedError("the Sandbox was closed") from None
            raise SandboxError(f"a sandbox worker failed to load the transitions of {env_id} "
                               f"{missing}: {type(exc).__name__} {worker.stderr_tail(800)}") from None
        if not reply.get("ok"):
            raise SandboxError(f"a sandbox worker failed to load the transitions of {env_id} {missing}: "
                               f"{str(reply.get('error'))[:2000]}")
        worker.warmed.update((env_id, split) for split in missing)
