"""Scores untrusted CWM source in warm, resource-limited worker processes.

Code written by an LLM never runs in the calling process. Two tiers:

1. The static validator (`cwm_jax.validate.validator.validate`) runs here, in the
   parent: it only parses the text, nothing of the program runs.
2. Loading (restricted `exec`), tracing, compiling and scoring happen in a
   separate worker process started from a fresh interpreter
   (`python -I -c ...`), with:
   - an environment without secrets (`worker_environment`: names ending in
     _KEY, _TOKEN, _SECRET or containing PASSWORD, API_KEY, SECRET, CREDENTIAL,
     AUTH are dropped), CPU-only JAX (`JAX_PLATFORMS=cpu`,
     `XLA_PYTHON_CLIENT_PREALLOCATE=false`, `CUDA_VISIBLE_DEVICES=`);
   - a private temporary working directory, its own session (process group),
     and no inherited file descriptors besides stdin/stdout (the request and
     reply pipe) and stderr (a log file in the temporary directory);
   - an address-space cap (`RLIMIT_AS`, set before JAX is imported), no
     core dumps, and a file size cap (`RLIMIT_FSIZE`);
   - where the kernel allows it, new mount, network and PID namespaces and a
     read-only view of the filesystem whose only writable place is the
     temporary directory (`confine`); never root: a root caller's worker
     switches to uid 65534 before JAX is imported;
   - a hard wall-clock limit per candidate that covers load, compile and run:
     past it the worker's process group is killed with SIGKILL and replaced.

Workers are kept warm in a small pool: each imports JAX and cwm_jax once,
keeps the transition splits it scores on in memory, and serves candidates one
at a time over a JSON-lines pipe (never pickle: a reply comes from a process
that ran untrusted code). A worker that timed out, crashed, or ran out of
memory is killed, reaped and replaced, and the candidate gets a
`ScoreResult(valid=False, error_kind="timeout" | "memory" | "crash")` whose
message an LLM can act on.

Usage:

    with Sandbox(size=2, timeout_s=30, warm_envs=["gymnax/CartPole"]) as box:
        result = box.score(source, "gymnax/CartPole")

    sandbox.score_source(source, "gymnax/CartPole")   # process-wide default pool
    sandbox.score_file("model.py", "gymnax/CartPole")  # what the CLI runs

One module per side of the process boundary:

- parent side: `pool` (`Sandbox`: validate, hand out workers, limits),
  `default_pool` (the process-wide Sandbox and `score_source`,
  `score_file`, `fit_source`), `process` (`Worker`: one worker process and
  the JSON-lines protocol), `messages` (exceptions; the timeout, memory and
  crash messages);
- across it: `isolation` (environment, rlimits, namespaces, the worker's
  command line and bootstrap);
- worker side: `confine` (the read-only filesystem view and privilege drop,
  loaded by file path before JAX or cwm_jax is imported), `worker_main`
  (main loop, in-memory split cache, operations);
- `testing`: `DebugSandbox`, whose workers run raw code, for tests only.

See docs/sandbox.md for what this protects against and what it does not.
Linux only (`RLIMIT_AS`, /proc).
"""

from cwm_jax.sandbox.default_pool import (
    close_default_sandbox,
    default_sandbox,
    fit_source,
    score_file,
    score_source,
)
from cwm_jax.sandbox.isolation import (
    FILE_SIZE_LIMIT,
    ISOLATIONS,
    GiB,
    MiB,
    default_memory_limit,
    namespace_prefix,
    worker_environment,
)
from cwm_jax.sandbox.messages import SandboxClosedError, SandboxError
from cwm_jax.sandbox.pool import (
    DEFAULT_FIT_TIMEOUT_S,
    DEFAULT_MAX_TASKS_PER_WORKER,
    DEFAULT_STARTUP_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WARMUP_TIMEOUT_S,
    Sandbox,
)
from cwm_jax.sandbox.process import MAX_MESSAGE_BYTES, MAX_STDERR_LOG_BYTES

__all__ = [
    "DEFAULT_FIT_TIMEOUT_S",
    "DEFAULT_MAX_TASKS_PER_WORKER",
    "DEFAULT_STARTUP_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_WARMUP_TIMEOUT_S",
    "FILE_SIZE_LIMIT",
    "GiB",
    "ISOLATIONS",
    "MAX_MESSAGE_BYTES",
    "MAX_STDERR_LOG_BYTES",
    "MiB",
    "Sandbox",
    "SandboxClosedError",
    "SandboxError",
    "close_default_sandbox",
    "default_memory_limit",
    "default_sandbox",
    "fit_source",
    "namespace_prefix",
    "score_file",
    "score_source",
    "worker_environment",
]
