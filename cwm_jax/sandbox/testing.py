"""Test operations of sandbox workers: run raw code in a worker, and look inside one. For tests only.

`DebugSandbox` is a Sandbox whose workers serve two more operations:

    {"op": "exec", "code"}  -> runs raw Python (no validator, no restricted
                               loader) and returns repr(`result`) as
                               summaries["exec"]["result"]
    {"op": "info"}          -> pid, cwd, environment, rlimits, fds and
                               namespaces of the worker

They let tests check the limits and the confinement themselves, apart from
the validator. Production never starts such a worker: the operations exist
only in a worker whose config has "test_ops", which only `DebugSandbox` sets.
They would grant no privilege if they leaked (whoever writes to a worker's
request pipe is its parent, which can run any code itself, and the code runs
inside the worker, confined like a candidate), but a production worker that
ran raw code from a message would skip the validator and the restricted
loader should a bug ever route candidate text there, so it has no way to.
"""

from __future__ import annotations

import os
import resource
import time

from cwm_jax.sandbox.isolation import vm_bytes
from cwm_jax.sandbox.messages import MEMORY_PATTERN
from cwm_jax.sandbox.pool import Sandbox
from cwm_jax.score.scoring import ScoreResult

__all__ = ["WORKER_OPS", "DebugSandbox"]


class DebugSandbox(Sandbox):
    """A Sandbox whose workers also run raw code (`exec_code`) and report on themselves (`worker_info`)."""

    _test_ops = True

    def exec_code(self, code: str, timeout_s: float = 10.0) -> ScoreResult:
        """Runs raw Python `code` in a worker under the candidate limits.

        valid=True with summaries {"exec": {"result": repr(result)}} if it
        finished; otherwise error_kind "runtime", or "timeout", "memory",
        "crash" as for a candidate.
        """
        return self._run({"op": "exec", "code": code}, None, (), timeout_s)

    def worker_info(self, timeout_s: float = 30.0) -> dict:
        """Introspection of one ready worker (not counted as a task): pid, cwd, environ, rlimits, fds."""
        worker = self._acquire()
        healthy = False
        try:
            worker.wait_ready(self.startup_timeout_s)
            reply = worker.request({"op": "info"}, timeout_s)
            healthy = True
            return reply["info"]
        finally:
            self._release(worker, healthy)


# -- worker side -----------------------------------------------------------------


def _info(message: dict) -> dict:
    return {"ok": True, "info": {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "rlimit_as": list(resource.getrlimit(resource.RLIMIT_AS)),
        "rlimit_core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "vm_bytes": vm_bytes(),
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "net_namespace": os.readlink("/proc/self/ns/net"),
        "visible_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "jax_backend": __import__("jax").default_backend(),
    }}


def _exec(message: dict) -> dict:
    namespace: dict = {}
    start = time.perf_counter()
    try:
        exec(message["code"], namespace)  # noqa: S102 - test operation: code from a test, inside the worker
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        kind = "memory" if MEMORY_PATTERN.search(f"{type(exc).__name__}: {exc}") else "runtime"
        return {"ok": True, "recycle": kind == "memory", "result": ScoreResult(
            valid=False, error=f"{type(exc).__name__}: {exc}"[:2000], error_kind=kind).to_dict()}
    return {"ok": True, "result": ScoreResult(
        valid=True, summaries={"exec": {"result": repr(namespace.get("result"))[:2000]}},
        seconds=time.perf_counter() - start).to_dict()}


WORKER_OPS = {"info": _info, "exec": _exec}
"""Operation name -> handler(message) -> reply, added to a worker's own by `worker_main.WorkerState`."""
