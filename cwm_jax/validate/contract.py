"""The CWM contract: the one place where the rules live.

The validator enforces exactly these limits and allow-lists, and `rules_text`
is what prompts show an LLM, so the two cannot drift apart.
"""

from __future__ import annotations

from cwm_jax.envs.spec import EnvSpec

__all__ = [
    "ALLOWED_ARRAY_ATTRIBUTES",
    "ALLOWED_BUILTINS",
    "ALLOWED_IMPORTS",
    "ALLOWED_JAX",
    "ALLOWED_JAX_NN",
    "ALLOWED_JNP",
    "ALLOWED_JNP_LINALG",
    "ALLOWED_LAX",
    "ALLOWED_MATH",
    "CHANCE_ARGUMENTS",
    "CHANCE_FUNCTIONS",
    "DTYPE_NAMES",
    "FORBIDDEN_JAX_REASONS",
    "FORBIDDEN_KEYWORDS",
    "MAX_ARRAY_ELEMENTS",
    "MAX_AST_DEPTH",
    "MAX_AST_NODES",
    "MAX_FORI_LOOP",
    "MAX_MODULE_ARRAY_OPS",
    "MAX_MODULE_ELEMENTS",
    "MAX_OUTCOMES",
    "MAX_OPERATIONS",
    "MAX_POW_EXPONENT",
    "MAX_PROBLEMS",
    "MAX_RANGE",
    "MAX_REPEAT",
    "MAX_SOURCE_CHARS",
    "MAX_STRING",
    "MAX_UNROLLED",
    "MODULE_LEVEL_JNP_ARRAY",
    "MODULE_LEVEL_JNP_ELEMENTWISE",
    "TYPING_MODULE",
    "contract_text",
    "rules_text",
]

# Imports a CWM may write, as (module, alias) -> what the alias names.
ALLOWED_IMPORTS: dict[str, str] = {
    "jax": "jax",
    "jax.numpy": "jax.numpy",
    "jax.lax": "jax.lax",
    "math": "math",
}

# Bounds that keep tracing and compilation small.
MAX_RANGE = 64  # iterations of one `for ... in range(...)` (it is unrolled)
MAX_UNROLLED = 256  # product of the ranges of nested `for` loops
MAX_FORI_LOOP = 10_000  # trip count of lax.fori_loop (not unrolled)
MAX_POW_EXPONENT = 64  # constant integer exponents, so `9**9**9` cannot stall
MAX_STRING = 64  # length of a string literal (einsum specs, dtype names)
MAX_ARRAY_ELEMENTS = 1 << 20  # largest array a step may create
MAX_OPERATIONS = 20_000  # primitive operations in the traced step
MAX_SOURCE_CHARS = 40_000  # length of the program text (the largest reference CWM has about 3,000)
MAX_AST_NODES = 10_000  # syntax-tree nodes (the largest reference CWM has about 1,000)
MAX_AST_DEPTH = 100  # nesting of the syntax tree (reference CWMs: about 15)
MAX_REPEAT = 4096  # largest integer constant that may multiply a value of unknown type
MAX_PROBLEMS = 10  # static problems listed in one rejection
MAX_MODULE_ELEMENTS = 1 << 16  # numbers in all module-level constants together
MAX_MODULE_ARRAY_OPS = 256  # eager jnp operations that module-level constants may cost at load

# A CWM with chance (cwm_jax.validate.chance) defines these three functions instead of `step`:
# (name, number of arguments), and the arguments' names as the contract writes them.
CHANCE_FUNCTIONS = (("afterstate", 2), ("chance_log_probs", 1), ("outcome", 2))
CHANCE_ARGUMENTS = {"step": "state, action", "afterstate": "state, action", "chance_log_probs": "afterstate",
                    "outcome": "afterstate, chance"}
MAX_OUTCOMES = 64  # chance outcomes C at one afterstate (Blackjack needs 10, a slippery grid 3)

# Keywords that would reach the compiler or place work on a device; rejected in every call.
FORBIDDEN_KEYWORDS = frozenset({"compiler_options", "backend", "device"})

# Names a program may import from `typing`: they may only appear in annotations,
# which are never evaluated (the loader compiles with postponed annotations).
TYPING_MODULE = "typing"

# Calls allowed in module-level constant definitions (besides math.*): they
# make a value from literal numbers, never a large array.
MODULE_LEVEL_JNP_ARRAY = frozenset({"array", "asarray"})  # (numbers[, dtype])
MODULE_LEVEL_JNP_ELEMENTWISE = frozenset({"deg2rad", "radians", "sqrt"})  # (numbers)
# dtype names, as `jnp.<name>` or a string: the only values a `dtype` may take.
DTYPE_NAMES = frozenset("""
    bool_ float16 float32 float64 int8 int16 int32 int64 uint8 uint32
""".split())

# Python builtins a CWM may call. Everything else (open, eval, exec, getattr,
# globals, type, print, __import__, ...) does not exist in its namespace.
ALLOWED_BUILTINS = (
    "abs", "bool", "enumerate", "float", "int", "len", "list", "max", "min",
    "range", "round", "sum", "tuple", "zip",
)

# jax.numpy functions and constants (also reachable as jax.numpy.<name>).
ALLOWED_JNP = frozenset("""
    abs absolute add all allclose amax amin any arange arccos arccosh arcsin
    arcsinh arctan arctan2 arctanh argmax argmin argsort around array
    array_equal asarray atleast_1d bool_ broadcast_to cbrt ceil clip
    concatenate copysign cos cosh count_nonzero cross cumprod cumsum deg2rad
    degrees diag diagonal diff divide dot e einsum equal exp expand_dims expm1
    eye fabs flip float16 float32 float64 floor floor_divide fmax fmin fmod full
    full_like greater greater_equal hstack hypot identity inf int8 int16 int32
    int64 interp isclose isfinite isinf isnan less less_equal linalg linspace log
    log10 log1p log2 logaddexp logical_and logical_not logical_or logical_xor
    matmul max maximum mean minimum min mod multiply nan nan_to_num ndarray negative
    newaxis not_equal ones ones_like outer pi power prod rad2deg radians ravel
    reciprocal remainder repeat reshape rint roll round searchsorted select
    sign sin sinc sinh sort sqrt square squeeze stack std subtract sum take
    take_along_axis tan tanh tile transpose tril triu true_divide trunc uint8
    uint32 unwrap var vstack where zeros zeros_like
    angle append argpartition argwhere array_split atleast_2d atleast_3d average
    bitwise_and bitwise_not bitwise_or bitwise_xor block column_stack conj
    delete digitize divmod dsplit dstack empty empty_like exp2 flatnonzero
    fliplr flipud float_power frexp gcd geomspace heaviside hsplit imag inner
    insert invert kron lcm ldexp left_shift logspace median meshgrid modf
    moveaxis nanmax nanmean nanmin nansum ndim nextafter nonzero pad partition
    polyval ptp real right_shift rot90 shape signbit size split swapaxes
    tensordot trace vdot vsplit
""".split())
ALLOWED_JNP_LINALG = frozenset("det inv norm solve".split())

# jax.lax functions. No while_loop (unbounded), no callbacks, no randomness.
ALLOWED_LAX = frozenset("""
    abs acos asin atan atan2 ceil clamp cond convert_element_type cos cosh
    dynamic_slice dynamic_update_slice erf exp floor fori_loop integer_pow log
    max min pow rem round rsqrt select select_n sign sin sinh sqrt
    stop_gradient switch tan tanh
""".split())

# jax.nn activations that are handy in dynamics (clipping, smooth steps).
ALLOWED_JAX_NN = frozenset("one_hot relu sigmoid softplus".split())

# Names under `jax.` itself: the three sub-modules above, `jax.Array` (for
# type hints) and `jax.jit`, the one decorator a CWM may carry.
ALLOWED_JAX = frozenset({"numpy", "lax", "nn", "Array", "jit"})

# Python's math module: pure float functions only (no factorial, comb, ...).
ALLOWED_MATH = frozenset("""
    acos asin atan atan2 ceil copysign cos cosh degrees e exp fabs floor fmod
    hypot inf isclose log log10 log2 nan pi pow radians sin sinh sqrt tan tanh
    tau trunc
""".split())

# Attributes and methods allowed on arrays and values (x.at[i].set(v), ...).
ALLOWED_ARRAY_ATTRIBUTES = frozenset("""
    T add all any argmax argmin astype at clip copy cumsum divide dot dtype flatten
    get max mean min multiply ndim prod ravel reshape round set shape size
    squeeze std sum transpose var
""".split())

# Sub-trees of jax that are rejected with a specific reason.
FORBIDDEN_JAX_REASONS = {
    "jax.random": "randomness is not allowed: a CWM must be deterministic",
    "jax.debug": "host callbacks and debug printing are not allowed",
    "jax.pure_callback": "host callbacks are not allowed",
    "jax.experimental": "host callbacks and experimental APIs are not allowed",
    "jax.lax.while_loop": "lax.while_loop is not allowed (it may never end); use lax.fori_loop with constant bounds or a `for` over range(N)",
    "jax.lax.scan": "lax.scan is not allowed; use lax.fori_loop with constant bounds",
}


def rules_text() -> str:
    """The jax-subset rules, as shown to an LLM and enforced by the validator."""
    return f"""\
Write ONE Python module that defines `step(state, action)` (or, for an
environment with chance, the three functions `afterstate`, `chance_log_probs`
and `outcome` of its contract) and nothing that runs on import besides
constant definitions.

Allowed:
- Imports: exactly `import jax`, `import jax.numpy as jnp`, `from jax import lax`,
  `import math`. No other module (no numpy, no os, no random).
- Module-level numeric constants (numbers, tuples/lists of numbers, a dict of
  them with string keys, math.pi, math.* functions, arithmetic on constants
  defined above, jnp.array([...]) of numbers with dtype=jnp.float32) and
  helper functions defined with `def` (lambdas too). Nothing else runs at
  module level: no other calls, no jnp.ones/zeros, no matrix products.
- Type hints (`from typing import Tuple` is fine; hints are never evaluated)
  and helper names with one leading underscore (`_helper`, `_ = action`).
- Inside functions: assignments, `return`, arithmetic, comparisons, calls to
  jnp.* (e.g. jnp.where, jnp.clip, jnp.sin, jnp.array, jnp.stack), lax.cond,
  lax.select, lax.switch, lax.fori_loop(lower, upper, body, init) with constant
  bounds (at most {MAX_FORI_LOOP} iterations), math.* on constants, array
  methods such as x.at[i].set(v), x.astype(jnp.float32), x.sum(), x.shape.
- `for i in range(N)` with a constant N <= {MAX_RANGE}, or `range(len(state))`
  (the loop is unrolled; nested constant loops at most {MAX_UNROLLED}
  iterations in total).
- Python `if` only on constants (such as a loop index), never on `state`,
  `action` or anything computed from them.
- Builtins: {", ".join(ALLOWED_BUILTINS)}.

Not allowed (the program is rejected):
- `if`/`while`/`x if c else y`/`and`/`or`/`not` on values computed from the
  state or the action: use jnp.where(cond, a, b), lax.select or lax.cond.
- `while` loops, recursion, lax.while_loop, lax.scan.
- Classes, global/nonlocal, decorators (except @jax.jit), try/except, raise,
  assert, with, an `if __name__ == "__main__":` block or other top-level code,
  side effects: print, file or network I/O, reading environment
  variables.
- Names starting with two underscores, attributes starting with one, and the
  builtins open, eval, exec, compile, getattr, setattr, globals, locals,
  vars, type, input, print, __import__. Reusing the name of a builtin
  (`def len`), of an import (`jnp = ...`) or of `step` for something else.
- jax.jit except as a bare `@jax.jit` decorator, calling the result of a call
  (`f(x)(y)`), `**` in calls, and the keywords compiler_options, backend and
  device. List or tuple arithmetic (`(0.0,) * n`): use jnp.full or jnp.tile.
- Randomness (jax.random, numpy.random), host callbacks (jax.debug.*,
  jax.pure_callback, io_callback), mutation of module-level values.
- Arrays larger than {MAX_ARRAY_ELEMENTS} elements.
"""


def contract_text(spec: EnvSpec) -> str:
    """The signature a CWM must implement for one environment, in words (the chance contract for a stochastic one)."""
    if getattr(spec, "stochastic", False):
        return chance_contract_text(spec)
    return f"""\
def step(state, action):
    # state:  float32 array of shape [{spec.obs_dim}] (the observation, see the description)
    # action: {spec.action_signature()}
    # returns (next_state, reward, done):
    #   next_state: float32 array of shape [{spec.obs_dim}]
    #   reward:     float32 scalar
    #   done:       bool scalar, True when the episode terminates (ignore time limits)

`step` must be pure and deterministic, and work under jax.jit and jax.vmap.
"""


def chance_contract_text(spec: EnvSpec) -> str:
    """The contract of a CWM with chance: an afterstate, C outcomes with their log-probabilities, their results."""
    return f"""\
The environment is random: the same state and action can lead to different
next states. Model the randomness explicitly with three functions (no `step`):

def afterstate(state, action):
    # state:  float32 array of shape [{spec.obs_dim}] (the observation, see the description)
    # action: {spec.action_signature()}
    # returns the afterstate: a float32 array of a fixed shape of your choice
    #   (what is decided before chance acts, e.g. the state and the action)

def chance_log_probs(afterstate):
    # returns float32 [C]: the log-probability of each of C chance outcomes at
    #   this afterstate (C fixed, 1 <= C <= {MAX_OUTCOMES}; -jnp.inf for an impossible outcome;
    #   they are normalised for you, so any logits work)

def outcome(afterstate, chance):
    # chance: int32 scalar in {{0, ..., C - 1}}, the outcome that happened
    # returns (next_state, reward, done):
    #   next_state: float32 array of shape [{spec.obs_dim}]
    #   reward:     float32 scalar
    #   done:       bool scalar, True when the episode terminates (ignore time limits)

All three must be pure and deterministic (no jax.random: the framework draws
the outcome), and work under jax.jit and jax.vmap. Write the probabilities
as module-level constants: they are fitted to the data.
"""
