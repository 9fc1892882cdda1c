"""Compile a jitted function, then run it, timing the two phases apart."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["compile_then_run"]


def compile_then_run(jitted, *args, on_compiled: Callable[[float], None] = lambda seconds: None):
    """Compiles `jitted` (a `jax.jit` function) for `args`, then runs it once, timing each apart.

    Returns:
      (output, compile_seconds, run_seconds); `on_compiled(compile_seconds)` is
      called in between (to report progress).
    """
    import jax

    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_seconds = time.perf_counter() - start
    on_compiled(compile_seconds)
    start = time.perf_counter()
    output = jax.block_until_ready(compiled(*args))
    return output, compile_seconds, time.perf_counter() - start
