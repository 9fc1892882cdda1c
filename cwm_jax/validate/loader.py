"""Loads validated CWM source into a jittable `step` and checks the contract.

Order of checks: the static validator (nothing runs), then the module is
executed in a namespace that holds only the allowed modules and a minimal set
of builtins, then `step` is traced abstractly (shapes and dtypes against the
environment's spaces, under jit and vmap, size limits on the traced program),
and finally run on a few start states to catch NaN or inf outputs.

This runs the program in the calling process: code from an LLM goes through
the sandbox (`cwm_jax.sandbox`), whose workers call this loader.
"""

from __future__ import annotations

import __future__
import builtins
import dis
import functools
import math
import os
import sys
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax import envs, reference
from cwm_jax.validate import contract
from cwm_jax.validate import validator
from cwm_jax.envs import EnvSpec, StepFn
from cwm_jax.validate.text import source_lines, strip_bom
from cwm_jax.errors import (
    CWMContractError,
    CWMError,
    CWMLoadError,
    CWMResourceError,
    CWMRuntimeError,
)

__all__ = [
    "FILENAME",
    "PROBE_STATES",
    "check_output",
    "check_resources",
    "check_step_shapes",
    "compile_cwm",
    "is_chance_program",
    "load_cwm",
    "load_cwm_file",
    "load_reference",
    "probe_actions",
    "probe_states",
    "read_cwm_file",
    "restricted_namespace",
    "wrap_program_error",
]

FILENAME = "<cwm>"
PROBE_STATES = 8
# Annotations of a CWM are never evaluated: postponed by an explicit flag, and
# not inherited from this module's own `from __future__` (dont_inherit), so
# the protection holds whatever this file imports.
_COMPILE_FLAGS = __future__.annotations.compiler_flag


_IMPORT_NAME = dis.opmap["IMPORT_NAME"]


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
    """`__import__` that can only hand out the allowed modules to the CWM's own import statements.

    C code that a CWM calls (jax's and numpy's extensions) imports through
    `PyImport_Import`, which takes `__import__` from the builtins of the Python
    frame on top of the stack: the CWM's. Such a call (the CWM's frame is not
    at an import statement) gets the real import; the CWM cannot call
    `__import__` itself, since the validator rejects every double-underscore name.
    """
    caller = sys._getframe(1)
    if caller.f_code.co_filename == FILENAME and caller.f_code.co_code[caller.f_lasti] != _IMPORT_NAME:
        return builtins.__import__(name, globals, locals, fromlist, level)
    if level != 0 or name not in contract.ALLOWED_IMPORTS:
        raise ImportError(f"import of {name!r} is not allowed")
    module = {"jax": jax, "jax.numpy": jax, "jax.lax": jax, "math": math}[name]
    return module


def compile_cwm(tree) -> object:
    """Code object of a validated tree; its annotations stay unevaluated strings."""
    return compile(tree, FILENAME, "exec", flags=_COMPILE_FLAGS, dont_inherit=True)


def restricted_namespace() -> dict:
    """The globals a CWM module runs in: the allowed builtins and an `__import__` of the allowed modules only."""
    safe = {name: getattr(builtins, name) for name in contract.ALLOWED_BUILTINS}
    safe["__import__"] = _restricted_import
    return {"__builtins__": safe, "__name__": "cwm"}


def _program_line(exc: BaseException) -> int | None:
    """Line of the innermost frame of the CWM in an exception's traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == FILENAME:
            line = frame.lineno
    return line


def _first_lines(text: str, limit: int = 400) -> str:
    text = " ".join(line.strip() for line in source_lines(str(text).strip())[:3])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _explain(exc: BaseException) -> str:
    """A message an LLM can act on for an error raised while tracing `step`."""
    if isinstance(exc, jax.errors.TracerBoolConversionError) or (
        isinstance(exc, jax.errors.ConcretizationTypeError) and "bool" in str(exc)
    ):
        return (
            "Python `if`, `while`, `x if c else y`, `and`, `or`, `not` or bool() on a traced "
            "value (one computed from state or action); use jnp.where(cond, a, b), lax.select "
            "or lax.cond, and jnp.logical_and / & for conditions"
        )
    if isinstance(exc, jax.errors.TracerIntegerConversionError):
        return (
            "a traced value is used as a Python int (int(x), an index into a list or tuple, "
            "range(x)); index arrays with jnp.take(array, i) or array[i], and use lax.switch "
            "to pick between functions"
        )
    if isinstance(exc, jax.errors.ConcretizationTypeError):
        return (
            "a traced value is used where a concrete Python value is needed (float(x), int(x), "
            "math.sin(x) and other math.* functions, a shape, a loop bound); keep values as jnp "
            "arrays (jnp.sin, jnp.sqrt, ...), use jnp.where / lax.cond for branches and constant "
            "shapes"
        )
    if isinstance(exc, jax.errors.TracerArrayConversionError):
        return "a traced value is converted to a NumPy array; use jax.numpy operations only"
    if isinstance(exc, RecursionError):
        return (
            "recursion too deep: a function calls itself, directly or through a function passed as an "
            "argument; recursion is not allowed, use a for loop over range(N) or lax.fori_loop"
        )
    if isinstance(exc, MemoryError):
        return "the program ran out of memory; arrays must stay small"
    return f"{type(exc).__name__}: {_first_lines(exc)}"


def wrap_program_error(exc: BaseException, source_lines: list[str], cls=CWMLoadError) -> CWMError:
    line = _program_line(exc)
    source_line = source_lines[line - 1] if line and line <= len(source_lines) else None
    return cls(_explain(exc), line=line, source_line=source_line)


def check_output(out, spec: EnvSpec) -> None:
    """`out` is the eval_shape result of step; raise if it breaks the contract."""
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        got = f"a {type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        raise CWMContractError(f"`step` must return a tuple (next_state, reward, done); it returned {got}")
    next_state, reward, done = out
    for name, value in (("next_state", next_state), ("reward", reward), ("done", done)):
        if not isinstance(value, jax.ShapeDtypeStruct):
            raise CWMContractError(f"{name} must be an array, got {type(value).__name__}")
    if next_state.shape != (spec.obs_dim,):
        raise CWMContractError(
            f"next_state has shape {next_state.shape}; expected ({spec.obs_dim},), the same shape as state"
        )
    if next_state.dtype != jnp.float32:
        raise CWMContractError(
            f"next_state has dtype {next_state.dtype}; expected float32; use .astype(jnp.float32)"
        )
    if reward.shape != ():
        raise CWMContractError(
            f"reward has shape {reward.shape}; expected a scalar (shape ()); "
            "use jnp.sum(...) or index it, e.g. reward[0]"
        )
    if reward.dtype != jnp.float32:
        raise CWMContractError(
            f"reward has dtype {reward.dtype}; expected float32; use jnp.float32(...) or .astype(jnp.float32)"
        )
    if done.shape != ():
        raise CWMContractError(f"done has shape {done.shape}; expected a bool scalar (shape ())")
    if done.dtype != jnp.bool_:
        raise CWMContractError(
            f"done has dtype {done.dtype}; expected bool; use a comparison such as x > 1.0 "
            "or .astype(bool)"
        )


def _walk_jaxpr(jaxpr):
    """Yields every equation of a jaxpr, its sub-jaxprs included."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _walk_jaxpr(inner)


def check_resources(closed_jaxpr) -> None:
    count = 0
    for eqn in _walk_jaxpr(closed_jaxpr.jaxpr):
        count += 1
        for var in eqn.outvars:
            shape = getattr(var.aval, "shape", ())
            size = math.prod(shape)
            if size > contract.MAX_ARRAY_ELEMENTS:
                raise CWMResourceError(
                    f"`step` creates an array of shape {tuple(shape)} ({size} elements; the limit is "
                    f"{contract.MAX_ARRAY_ELEMENTS}); a CWM only needs arrays the size of the state"
                )
    if count > contract.MAX_OPERATIONS:
        raise CWMResourceError(
            f"`step` traces to {count} operations (limit {contract.MAX_OPERATIONS}); unrolled loops "
            "are too long: vectorise with jnp or use lax.fori_loop"
        )


@functools.cache
def probe_states(spec: EnvSpec) -> np.ndarray:
    """float32 [PROBE_STATES, obs_dim]: start states of the real environment (recorded states for a dataset)."""
    if spec.records_only:
        from cwm_jax.data.transitions import load_split

        return np.asarray(load_split(spec, "train").state[:PROBE_STATES], np.float32)
    if spec.source == "gymnasium":
        from cwm_jax.envs.gymnasium_source import start_states

        return start_states(spec, PROBE_STATES, seed=1234)
    env, params = spec.make_gymnax()
    keys = jax.random.split(jax.random.key(1234), PROBE_STATES)
    obs, _ = jax.vmap(env.reset_env, in_axes=(0, None))(keys, params)
    return np.asarray(jax.vmap(spec.flatten_obs)(obs))


def probe_actions(spec: EnvSpec) -> np.ndarray:
    if spec.discrete:
        return np.arange(spec.num_actions, dtype=np.int32)
    return np.stack([
        np.full((spec.action_dim,), spec.action_low, np.float32),
        np.zeros((spec.action_dim,), np.float32),
        np.full((spec.action_dim,), spec.action_high, np.float32),
    ])


def _check_finite(step: StepFn, spec: EnvSpec, source_lines: list[str]) -> None:
    states = probe_states(spec)
    actions = probe_actions(spec)
    s = np.repeat(states, len(actions), axis=0)
    a = np.tile(actions, (len(states),) + (1,) * (actions.ndim - 1))
    try:
        next_state, reward, _ = jax.jit(jax.vmap(step))(s, a)
        next_state, reward = np.asarray(next_state), np.asarray(reward)
    except Exception as exc:  # noqa: BLE001 - any failure of untrusted code is a rejection
        raise wrap_program_error(exc, source_lines, CWMRuntimeError) from None
    bad = ~(np.isfinite(next_state).all(axis=1) & np.isfinite(reward))
    if bad.any():
        i = int(np.argmax(bad))
        raise CWMRuntimeError(
            f"`step` returned non-finite values (NaN or inf) on a start state of the environment: "
            f"state={np.array2string(s[i], precision=5)}, action={a[i].tolist()} gave "
            f"next_state={np.array2string(next_state[i], precision=5)}, reward={reward[i]}; "
            "guard divisions and logs (e.g. jnp.maximum(x, 1e-8))"
        )


def check_step_shapes(step: StepFn, env: str | EnvSpec) -> None:
    """CWMContractError unless `step` (any jittable step, e.g. one written in Python by hand) has the contract's
    input and output shapes and dtypes for `env`: checked on shapes only, nothing computed."""
    spec = envs.env_spec(env)
    try:
        out = jax.eval_shape(step, spec.state_struct(), spec.action_struct())
    except Exception as exc:  # noqa: BLE001 - the step's own error, named as such
        raise CWMContractError(f"`step` fails on a state float32 [{spec.obs_dim}] and one action of "
                               f"{spec.id}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                               ) from None
    check_output(out, spec)


def is_chance_program(tree) -> bool:
    """The validated program defines the chance functions (`cwm_jax.validate.chance`), not `step`."""
    return any(getattr(stmt, "name", None) == contract.CHANCE_FUNCTIONS[0][0] for stmt in tree.body)


def load_cwm(source: str, env: str | EnvSpec, *, check_finite: bool = True) -> StepFn:
    """Validates, executes and contract-checks CWM source for an environment.

    Args:
      source: the module text.
      env: an environment id or spec; its spaces define the expected shapes.
      check_finite: run `step` on start states of the environment and reject
        NaN or inf outputs (costs one small compile).

    Returns:
      `step(state, action) -> (next_state, reward, done)`: state float32
      [obs_dim], action int32 [] or float32 [action_dim]; outputs float32
      [obs_dim], float32 [], bool []. Pure and jittable; vmap it for batches.

    Raises:
      CWMError: a subclass naming the problem and its line.
      TypeError: `source` is a path (use `load_cwm_file`).
    """
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                          and source.strip().endswith(".py")):
        raise TypeError(f"load_cwm takes the program's text, not a path ({str(source)!r}); "
                        "for a file use cwm_jax.load_cwm_file(path, env)")
    spec = envs.env_spec(env)
    tree = validator.validate(source)
    if is_chance_program(tree):
        raise CWMContractError("this CWM models chance (afterstate, chance_log_probs, outcome): load it with "
                               "cwm_jax.validate.chance.load_chance_cwm, score it by likelihood")
    lines = source_lines(strip_bom(source))
    namespace = restricted_namespace()
    try:
        exec(compile_cwm(tree), namespace)  # noqa: S102 - validated, restricted namespace
    except Exception as exc:  # noqa: BLE001
        raise wrap_program_error(exc, lines) from None
    user_step = namespace.get("step")
    if not callable(user_step):
        raise CWMContractError("`step` is not a function; define `def step(state, action):`")

    state, action = spec.state_struct(), spec.action_struct()
    try:
        closed_jaxpr, out = jax.make_jaxpr(user_step, return_shape=True)(state, action)
    except CWMError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise wrap_program_error(exc, lines) from None
    check_output(out, spec)
    check_resources(closed_jaxpr)

    def step(state: jax.Array, action: jax.Array):
        next_state, reward, done = user_step(state, action)
        return (
            jnp.asarray(next_state, jnp.float32),
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(done, jnp.bool_),
        )

    try:
        batch = 3
        jax.eval_shape(
            jax.vmap(step),
            jax.ShapeDtypeStruct((batch, *state.shape), state.dtype),
            jax.ShapeDtypeStruct((batch, *action.shape), action.dtype),
        )
    except Exception as exc:  # noqa: BLE001
        error = wrap_program_error(exc, lines)
        raise CWMLoadError(f"`step` fails under jax.vmap: {error.message}", line=error.line,
                           source_line=error.source_line) from None
    if check_finite:
        _check_finite(step, spec, lines)
    step.num_actions = spec.num_actions  # planners check it against their num_actions
    return step


def read_cwm_file(path: str | Path) -> str:
    """Source text of a CWM file, with a clear error when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise CWMLoadError(f"model file {str(path)!r} does not exist or is not a file")
    limit = 4 * contract.MAX_SOURCE_CHARS  # bytes: UTF-8 takes at most 4 per character
    too_large = CWMLoadError(f"model file {str(path)!r} is larger than {limit} bytes; a CWM is a short module "
                             f"(at most {contract.MAX_SOURCE_CHARS} characters)")
    try:
        if path.stat().st_size > limit:  # checked before anything is read
            raise too_large
        with path.open("rb") as file:
            data = file.read(limit + 1)  # bounded even if the file grew since
        if len(data) > limit:
            raise too_large
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CWMLoadError(f"cannot read model file {str(path)!r}: {exc}") from None


def load_cwm_file(path: str | Path, env: str | EnvSpec, **kwargs) -> StepFn:
    """`load_cwm` on the text of a file."""
    return load_cwm(read_cwm_file(path), env, **kwargs)


def load_reference(env: str | EnvSpec, **kwargs) -> StepFn:
    """The hand-written reference CWM of an environment, through the same checks."""
    return load_cwm(reference.source(env), env, **kwargs)
