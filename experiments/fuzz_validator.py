"""Property-based fuzzing of the validator (hypothesis) under a memory cap.

    python experiments/fuzz_validator.py --examples 20000 --memory-mb 1024

The validator runs in the caller's process on untrusted text, so whatever the
input, `validate` must return or raise a CWMError, within `--limit-s`
seconds, without ever needing more than the address-space cap set here with
`resource.setrlimit` (a MemoryError it turns into "too large to check" counts
as a failure: the generated programs are all short). The programs fold
constants with the operators that once built huge numbers (shifts and powers
of 0, 1 and -1, repetition, augmented assignments, nesting).
`tests/cwm_jax/validate/test_validator_fuzz.py` runs a short session of this in a subprocess.
Prints one line: examples run and the slowest input's time; exit status 1
with the failing program on a failure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_NUMBERS = st.sampled_from(["0", "1", "-1", "2", "3", "64", "255", "256", "257", "4096", "10**9", "2**33", "2**64",
                            "(1 << 200)", "1e308", "0.5", "-0.0", "True", "K0", "K1", "x"])
_BINOPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^"])
_UNARY = st.sampled_from(["-", "+", "~", "not "])
# The folds that once escaped the caps: shifts and powers of 0, 1 and -1 by a huge amount.
_EDGE = st.tuples(st.sampled_from(["0", "1", "-1", "(-1)", "1.0"]), st.sampled_from(["<<", "**", ">>", "*"]),
                  st.sampled_from(["2**33", "2**40", "(1 << 200)", "10**9", "K0", "x"])).map(" ".join)


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, _BINOPS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(_UNARY, inner).map(lambda t: f"({t[0]}{t[1]})"),
            st.tuples(st.sampled_from(["'ab'", "(0.0,)", "[1.0]", "b'x'"]), inner).map(lambda t: f"({t[0]} * {t[1]})"),
            st.tuples(st.sampled_from(["math.sqrt", "math.floor", "math.exp", "jnp.float32", "range", "len"]),
                      inner).map(lambda t: f"{t[0]}({t[1]})"),
        )

    return st.recursive(st.one_of(_NUMBERS, _EDGE), extend, max_leaves=12)


@st.composite
def programs(draw) -> str:
    expr = _expressions()
    lines = ["import math", "import jax.numpy as jnp"]
    for i in range(draw(st.integers(0, 3))):
        lines.append(f"K{i} = {draw(expr)}")
    if draw(st.booleans()):
        lines.append(f"K0 {draw(st.sampled_from(['+=', '**=', '<<=', '*=']))} {draw(expr)}")
    lines.append("def step(state, action):")
    lines.append(f"    x = {draw(expr)}")
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["+=", "**=", "<<=", "*=", "="]))
        lines.append(f"    x {op} {draw(expr)}")
    if draw(st.booleans()):
        lines.append(f"    for i in range({draw(expr)}):")
        lines.append(f"        x = x {draw(_BINOPS)} {draw(expr)}")
    lines.append("    return state, jnp.float32(0.0), state[0] > 1.0")
    return "\n".join(lines) + "\n"


def run(*, examples: int, limit_s: float, memory_mb: int, seed: int | None = None) -> tuple[int, float]:
    """Fuzzes `validate` under an address-space cap of current use + `memory_mb`; (examples, slowest seconds)."""
    from cwm_jax.validate import validator
    from cwm_jax.errors import CWMError

    with open("/proc/self/statm") as f:
        in_use = int(f.read().split()[0]) * resource.getpagesize()
    cap = in_use + memory_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    stats = {"examples": 0, "slowest": 0.0}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is not None,
              suppress_health_check=list(HealthCheck))
    @given(programs())
    def property_(source: str) -> None:
        validator._cache.clear()  # each example validated from scratch
        start = time.perf_counter()
        try:
            validator.validate(source)
        except CWMError as error:
            assert "too large to check" not in str(error), f"ran out of memory on:\n{source}"
        elapsed = time.perf_counter() - start
        assert elapsed < limit_s, f"{elapsed:.2f} s on:\n{source}"
        stats["examples"] += 1
        stats["slowest"] = max(stats["slowest"], elapsed)

    property_()
    return stats["examples"], stats["slowest"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000, help="programs to generate (default 20000)")
    parser.add_argument("--limit-s", type=float, default=2.0, help="most seconds one input may take (default 2)")
    parser.add_argument("--memory-mb", type=int, default=512,
                        help="address space allowed on top of what the process uses at start (default 512)")
    parser.add_argument("--seed", type=int, help="derandomize (the same programs on every run)")
    args = parser.parse_args(argv)
    try:
        examples, slowest = run(examples=args.examples, limit_s=args.limit_s, memory_mb=args.memory_mb,
                                seed=args.seed)
    except AssertionError as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"{examples} programs validated under a {args.memory_mb} MiB cap; slowest {slowest:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
