"""CWMs with chance: an afterstate, C outcomes with their log-probabilities, and what each outcome does.

A stochastic environment is modelled the way `mctx.stochastic_muzero_policy`
searches it (docs/chance.md):

    afterstate(state, action)      -> afterstate            deterministic
    chance_log_probs(afterstate)   -> float32 [C]            log P(c | afterstate), -inf: impossible
    outcome(afterstate, chance)    -> (next_state, reward, done)   deterministic, chance int32 in [0, C)

A deterministic CWM (`step(state, action)`) is the case C = 1: `from_step`
wraps it, so everything written for `ChanceModel` (likelihood scoring, the
stochastic planner) takes both. `load_chance_cwm` loads either kind of
program through the same validator and the same contract checks as
`loader.load_cwm`; it runs the program, so untrusted code goes through the
sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax import envs
from cwm_jax.envs import EnvSpec, StepFn
from cwm_jax.errors import CWMContractError, CWMError, CWMLoadError, CWMRuntimeError
from cwm_jax.validate import contract, loader, validator
from cwm_jax.validate.text import source_lines, strip_bom

__all__ = [
    "ChanceModel",
    "OutcomeTable",
    "from_step",
    "load_chance_cwm",
    "mode_step",
    "outcome_table",
]


class ChanceModel(NamedTuple):
    """A world model with explicit chance (unbatched functions; vmap them).

    Attributes:
      afterstate: (state [obs_dim], action) -> afterstate (a pytree).
      chance_log_probs: afterstate -> float32 [C], normalised log-probabilities.
      outcome: (afterstate, chance int32 []) -> (next_state float32 [obs_dim],
        reward float32 [], done bool []).
      num_outcomes: C (static).
    """

    afterstate: Callable[[Any, jax.Array], Any]
    chance_log_probs: Callable[[Any], jax.Array]
    outcome: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]
    num_outcomes: int


class OutcomeTable(NamedTuple):
    """Every outcome of one (state, action): next_state [C, obs_dim], reward [C], done [C], log_prob [C]."""

    next_state: jax.Array
    reward: jax.Array
    done: jax.Array
    log_prob: jax.Array


def from_step(step: StepFn) -> ChanceModel:
    """A deterministic `step` as a chance model with C = 1 (the afterstate is (state, action))."""

    def afterstate(state, action):
        return (state, action)

    def chance_log_probs(after):
        del after
        return jnp.zeros((1,), jnp.float32)

    def outcome(after, chance):
        del chance
        return step(*after)

    return ChanceModel(afterstate, chance_log_probs, outcome, 1)


def outcome_table(model: ChanceModel, state: jax.Array, action: jax.Array) -> OutcomeTable:
    """All C outcomes of one (state, action), with their log-probabilities (unbatched)."""
    after = model.afterstate(state, action)
    log_prob = model.chance_log_probs(after)
    chances = jnp.arange(model.num_outcomes, dtype=jnp.int32)
    next_state, reward, done = jax.vmap(model.outcome, in_axes=(None, 0))(after, chances)
    return OutcomeTable(next_state, reward, done, log_prob)


def mode_step(model: ChanceModel) -> StepFn:
    """The deterministic step that always takes the most likely outcome (the paper's accuracy scores it)."""

    def step(state, action):
        after = model.afterstate(state, action)
        return model.outcome(after, jnp.argmax(model.chance_log_probs(after)).astype(jnp.int32))

    return step


def _trace(fn, lines, *args):
    try:
        return jax.make_jaxpr(fn, return_shape=True)(*args)
    except CWMError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of untrusted code is a rejection
        raise loader.wrap_program_error(exc, lines) from None


def _check_chance_shapes(after, log_probs) -> int:
    for leaf in jax.tree.leaves(after):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            raise CWMContractError(f"`afterstate` must return arrays, got {type(leaf).__name__}")
    if not jax.tree.leaves(after):
        raise CWMContractError("`afterstate` returns nothing; return an array such as jnp.append(state, action)")
    if not isinstance(log_probs, jax.ShapeDtypeStruct) or log_probs.ndim != 1:
        got = getattr(log_probs, "shape", type(log_probs).__name__)
        raise CWMContractError(f"`chance_log_probs` must return a float32 vector [C]; it returned {got}")
    if not jnp.issubdtype(log_probs.dtype, jnp.floating):
        raise CWMContractError(f"`chance_log_probs` returned dtype {log_probs.dtype}; use float32 log-probabilities")
    count = log_probs.shape[0]
    if not 1 <= count <= contract.MAX_OUTCOMES:
        raise CWMContractError(f"`chance_log_probs` gives {count} outcomes; C must be in [1, {contract.MAX_OUTCOMES}]")
    return count


def _check_probes(model: ChanceModel, spec: EnvSpec, lines) -> None:
    states = loader.probe_states(spec)
    actions = loader.probe_actions(spec)
    s = np.repeat(states, len(actions), axis=0)
    a = np.tile(actions, (len(states),) + (1,) * (actions.ndim - 1))
    try:
        table = jax.tree.map(np.asarray, jax.jit(jax.vmap(lambda x, u: outcome_table(model, x, u)))(s, a))
    except Exception as exc:  # noqa: BLE001
        raise loader.wrap_program_error(exc, lines, CWMRuntimeError) from None
    possible = np.isfinite(table.log_prob)
    finite = np.isfinite(table.next_state).all(axis=-1) & np.isfinite(table.reward)
    bad_probs = ~possible.any(axis=1) | np.isnan(table.log_prob).any(axis=1)
    bad = bad_probs | (possible & ~finite).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        what = ("`chance_log_probs` gave no possible outcome (all -inf or NaN)" if bad_probs[i]
                else "`outcome` returned non-finite values (NaN or inf) for a possible outcome")
        raise CWMRuntimeError(f"{what} on a start state of the environment: state="
                              f"{np.array2string(s[i], precision=5)}, action={a[i].tolist()}")


def load_chance_cwm(source: str, env: str | EnvSpec, *, check_finite: bool = True) -> ChanceModel:
    """Validates, executes and contract-checks a CWM of either kind as a `ChanceModel`.

    A program with `step` is loaded by `loader.load_cwm` and wrapped with C = 1;
    one with the chance functions is checked here: shapes of each function's
    outputs, the size of the traced program, jit and vmap, and (with
    `check_finite`) possible outcomes with finite results on start states.

    Raises:
      CWMError: a subclass naming the problem and its line.
    """
    spec = envs.env_spec(env)
    tree = validator.validate(source)
    if not loader.is_chance_program(tree):
        return from_step(loader.load_cwm(source, spec, check_finite=check_finite))
    lines = source_lines(strip_bom(source))
    namespace = loader.restricted_namespace()
    try:
        exec(loader.compile_cwm(tree), namespace)  # noqa: S102 - validated, restricted namespace
    except Exception as exc:  # noqa: BLE001
        raise loader.wrap_program_error(exc, lines) from None
    user = [namespace.get(name) for name, _ in contract.CHANCE_FUNCTIONS]
    if not all(callable(fn) for fn in user):
        raise CWMContractError("`afterstate`, `chance_log_probs` and `outcome` must be functions")
    user_after, user_log_probs, user_outcome = user
    state, action = spec.state_struct(), spec.action_struct()
    _, after = _trace(user_after, lines, state, action)
    _, log_probs = _trace(user_log_probs, lines, after)
    count = _check_chance_shapes(after, log_probs)
    _, out = _trace(user_outcome, lines, after, jax.ShapeDtypeStruct((), jnp.int32))
    loader.check_output(out, spec)

    def chance_log_probs(afterstate):
        return jax.nn.log_softmax(jnp.asarray(user_log_probs(afterstate), jnp.float32))

    def outcome(afterstate, chance):
        next_state, reward, done = user_outcome(afterstate, chance)
        return jnp.asarray(next_state, jnp.float32), jnp.asarray(reward, jnp.float32), jnp.asarray(done, jnp.bool_)

    model = ChanceModel(user_after, chance_log_probs, outcome, count)
    closed, _ = _trace(lambda x, u: outcome_table(model, x, u), lines, state, action)
    loader.check_resources(closed)
    try:
        batch = 3
        jax.eval_shape(jax.vmap(lambda x, u: outcome_table(model, x, u)),
                       jax.ShapeDtypeStruct((batch, *state.shape), state.dtype),
                       jax.ShapeDtypeStruct((batch, *action.shape), action.dtype))
    except Exception as exc:  # noqa: BLE001
        error = loader.wrap_program_error(exc, lines)
        raise CWMLoadError(f"the chance functions fail under jax.vmap: {error.message}", line=error.line,
                           source_line=error.source_line) from None
    if check_finite:
        _check_probes(model, spec, lines)
    return model
