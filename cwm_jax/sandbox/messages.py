"""What the sandbox says: its exceptions, and the messages a candidate gets when its worker was stopped.

The timeout, memory and crash messages are shown to an LLM, so each says
what the program probably did and how to fix it.
"""

from __future__ import annotations

import re
import signal

from cwm_jax.errors import SandboxError
from cwm_jax.sandbox.isolation import GiB

__all__ = [
    "MEMORY_PATTERN",
    "SandboxClosedError",
    "SandboxError",
    "crash_message",
    "fit_timeout_message",
    "memory_message",
    "signal_name",
    "timeout_message",
]


class SandboxClosedError(SandboxError):
    """`score` was called on a closed Sandbox."""


# Messages of errors that mean the worker hit its address-space cap.
MEMORY_PATTERN = re.compile(
    r"MemoryError|RESOURCE_EXHAUSTED|[Oo]ut of memory|ran out of memory|bad_alloc|Cannot allocate memory"
    r"|pthread_create\(\) failed|Resource temporarily unavailable"
)


def timeout_message(seconds: float) -> str:
    return (
        f"scoring took longer than {seconds:g} s and was stopped: the program probably loops forever or "
        "builds a huge computation. `for` loops and helper calls are unrolled while tracing, so helpers "
        "called inside nested loops multiply; a lax.fori_loop body runs once per iteration for every "
        "recorded transition. Keep `step` small and direct: vectorise with jnp, use few loop iterations."
    )


def fit_timeout_message(seconds: float) -> str:
    detail = timeout_message(seconds).split(": ", 1)[-1]
    return f"fitting took longer than {seconds:g} s and was stopped: {detail}"


def memory_message(limit: int) -> str:
    where = f"the limit is {limit / GiB:.1f} GiB" if limit else "the machine's memory"
    return (
        f"scoring ran out of memory ({where}) and was stopped: `step` creates "
        "arrays that are too large. It runs vmapped over all recorded transitions at once, so every "
        "intermediate array is multiplied by their number; keep intermediate arrays about the size of the state."
    )


def crash_message(description: str, detail: str) -> str:
    text = (
        f"the scoring process crashed ({description}) while loading or running the program. This is usually "
        "caused by a huge or degenerate computation; simplify `step`"
    )
    return text + (f" (last message: {detail})" if detail else "")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
