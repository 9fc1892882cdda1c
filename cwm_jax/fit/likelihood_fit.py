"""Maximum-likelihood fit of a CWM with chance: its outcome probabilities and its constants.

The constants are found as for the deterministic fit (`cwm_jax.fit.constants`:
module-level numbers, written back into the source). Every float constant the
chance functions can trace as a parameter is fitted by optax Adam (a
`lax.scan`, one compile) on the mean log-likelihood of the train split, made
smooth: each outcome's match with the recording is a Gaussian kernel of width
KERNEL_WIDTH times the spread of each element (a done that differs costs
DONE_PENALTY), so constants inside `outcome` get a gradient too, while for
exact matches the objective is the likelihood itself and its maximum is the
maximum-likelihood probability. Each constant moves as c0 * exp(z), so a
probability keeps its sign. The best parameters seen are kept.

The caller (`cwm_jax.fit.fitting.fit_source`) writes the values back and
keeps the fitted program only if its train likelihood is higher and its
held-out likelihood not lower. This executes the program: sandbox workers or
trusted code only.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cwm_jax.data.transitions import Transitions
from cwm_jax.envs import EnvSpec
from cwm_jax.fit.constants import Constant, PARAMS_NAME, parametrised_code
from cwm_jax.score.likelihood import PROBABILITY_FLOOR
from cwm_jax.validate import contract, loader
from cwm_jax.validate.chance import ChanceModel, outcome_table

__all__ = ["DONE_PENALTY", "KERNEL_WIDTH", "chance_factory", "fit_chance_values", "smooth_log_likelihood"]

KERNEL_WIDTH = 0.05  # kernel std as a fraction of each element's spread in the data
DONE_PENALTY = 50.0  # log-kernel of an outcome whose done differs from the recording
STEPS = 400
LEARNING_RATE = 0.03


def chance_factory(code, num_outcomes: int) -> Callable[[jax.Array], ChanceModel]:
    """params float32 [P] -> ChanceModel, by executing the parametrised module body (restricted namespace)."""

    def make(params):
        namespace = loader.restricted_namespace()
        namespace[PARAMS_NAME] = params
        exec(code, namespace)  # noqa: S102 - validated program, restricted namespace, sandbox worker
        after, log_probs, outcome = (namespace[name] for name, _ in contract.CHANCE_FUNCTIONS)

        def chance_log_probs(afterstate):
            return jax.nn.log_softmax(jnp.asarray(log_probs(afterstate), jnp.float32))

        def typed_outcome(afterstate, chance):
            next_state, reward, done = outcome(afterstate, chance)
            return (jnp.asarray(next_state, jnp.float32), jnp.asarray(reward, jnp.float32),
                    jnp.asarray(done, jnp.bool_))

        return ChanceModel(after, chance_log_probs, typed_outcome, num_outcomes)

    return make


def smooth_log_likelihood(model: ChanceModel, train: Transitions, widths: jax.Array, reward_width: float):
    """float32 []: mean over transitions of log sum_c P(c) K(outcome c, recording), floored softly."""
    table = jax.vmap(lambda s, a: outcome_table(model, s, a))(train.state, train.action)
    state_term = (((table.next_state - train.next_state[:, None, :]) / widths) ** 2).sum(axis=-1)
    reward_term = ((table.reward - train.reward[:, None]) / reward_width) ** 2
    done_term = jnp.where(table.done == train.done[:, None], 0.0, DONE_PENALTY)
    log_kernel = -0.5 * (state_term + reward_term) - done_term
    log_p = jax.nn.logsumexp(table.log_prob + log_kernel, axis=1)
    return jnp.logaddexp(log_p, jnp.log(PROBABILITY_FLOOR)).mean()


def _widths(train: Transitions) -> tuple[jax.Array, float]:
    change = np.asarray(train.next_state) - np.asarray(train.state)
    widths = KERNEL_WIDTH * np.maximum(change.std(axis=0), np.abs(np.asarray(train.next_state)).std(axis=0))
    reward_width = KERNEL_WIDTH * float(np.std(train.reward))
    return jnp.asarray(np.maximum(widths, 1e-4), jnp.float32), max(reward_width, 1e-4)


def fit_chance_values(tree: ast.Module, constants: Sequence[Constant], spec: EnvSpec, train: Transitions,
                      num_outcomes: int, *, log: Callable[[str], None] = lambda line: None,
                      steps: int = STEPS, learning_rate: float = LEARNING_RATE) -> tuple[list[Constant], np.ndarray]:
    """(the fitted constants, their values float32 [P]): the float constants that trace as parameters, by Adam."""
    candidates = [c for c in constants if not c.is_int and c.value != 0.0]
    widths, reward_width = _widths(train)
    data = Transitions(*(jnp.asarray(x) for x in train))

    def objective_for(subset):
        make = chance_factory(parametrised_code(tree, subset), num_outcomes)
        base = jnp.asarray([c.value for c in subset], jnp.float32)
        return lambda z: -smooth_log_likelihood(make(base * jnp.exp(z)), data, widths, reward_width), base

    def traces(subset) -> bool:
        try:
            jax.eval_shape(objective_for(subset)[0], jax.ShapeDtypeStruct((len(subset),), jnp.float32))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not as a parameter"
            return False

    if candidates and not traces(candidates):
        candidates = [c for c in candidates if traces([c])]
    if not candidates:
        return [], np.zeros((0,), np.float32)
    loss_fn, base = objective_for(candidates)
    optimizer = optax.adam(learning_rate)

    def body(carry, _):
        z, state, best_z, best_loss = carry
        loss, grad = jax.value_and_grad(loss_fn)(z)
        ok = jnp.isfinite(loss) & jnp.all(jnp.isfinite(grad))
        better = ok & (loss < best_loss)
        best_z, best_loss = jnp.where(better, z, best_z), jnp.where(better, loss, best_loss)
        updates, new_state = optimizer.update(jnp.where(ok, grad, 0.0), state, z)
        return (optax.apply_updates(z, updates), new_state, best_z, best_loss), loss

    z0 = jnp.zeros((len(candidates),), jnp.float32)
    init = (z0, optimizer.init(z0), z0, jnp.asarray(jnp.inf, jnp.float32))
    (_, _, best_z, best_loss), losses = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps))(init)
    log(f"likelihood fit of {', '.join(c.name for c in candidates)}: train log-likelihood "
        f"{-float(losses[0]):.4f} -> {-float(best_loss):.4f} (smoothed)")
    return list(candidates), np.asarray(base * jnp.exp(best_z), np.float32)
