"""The numerical part of `cwm_jax.fit.fitting`: loss, Adam warm start, Levenberg-Marquardt, accuracy search.

Everything works on a parameter vector `params` float32 [P] (one entry per
constant) and `make_step(params) -> step`, a CWM whose constants are those
entries. Executes the program: sandbox workers only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx

from cwm_jax.score import accuracy
from cwm_jax.data.transitions import Transitions

__all__ = [
    "CONFOUNDED_RATIO",
    "GRID_LOG_RANGE",
    "GRID_POINTS",
    "INT_GRID_RANGE",
    "NONFINITE_RESIDUAL",
    "FitSettings",
    "Key",
    "LOSS_BUCKET",
    "LOSS_FLOOR",
    "Problem",
    "confounded",
    "gradient_fit",
    "loss_bucket",
    "search_constant",
]

GRID_POINTS = 41
GRID_LOG_RANGE = 0.7  # the 1-D search looks at value * exp([-0.7, 0.7]): about x0.5 to x2
INT_GRID_RANGE = 20  # integer constants: value - 20 ... value + 20
NONFINITE_RESIDUAL = 1e3
LOSS_BUCKET = 1.1  # losses within 10% of each other tie (`Key.fit`)
LOSS_FLOOR = 1e-4  # and so do all below 1e-4 (an RMS scaled error of 1%: float noise of an exact model)
CONFOUNDED_RATIO = 1e-3  # singular value / largest below which a direction of the constants is not seen in the data


class FitSettings(NamedTuple):
    """Hyperparameters of the fit (defaults measured on the -unknown variants)."""

    starts: int = 4
    start_spread: float = 0.3  # std of the random starts in log space (about +-30%)
    adam_steps: int = 800
    adam_learning_rate: float = 0.03
    lm_steps: int = 60
    seed: int = 0


@dataclasses.dataclass(frozen=True, order=True)
class Key:
    """What "better" means: more transitions entirely right, then more components right, then a lower loss.

    `fit` is minus the loss's bucket on a `LOSS_BUCKET` log scale, so an
    approximate model that gets nothing exactly right (a MuJoCo task) still
    improves by predicting closer, while changes of a few percent in the loss
    (constants the data do not pin down) count as ties. `smooth`
    (transitions with state and reward right) takes no part in the ordering;
    when it is N, only `done` is wrong, which no gradient can fix.
    """

    strict: int
    components: int
    smooth: int = dataclasses.field(compare=False)
    fit: int = 0

    @property
    def accuracy(self) -> tuple[int, int]:
        """(strict, components): the part of the key that the derivative-free search maximises."""
        return self.strict, self.components


def loss_bucket(loss: float) -> int:
    """`Key.fit` of a mean squared scaled residual: higher for a lower loss, equal within a factor `LOSS_BUCKET`
    and for every loss below `LOSS_FLOOR`."""
    return -int(np.ceil(np.log(max(float(loss), LOSS_FLOOR)) / np.log(LOSS_BUCKET)))


def _scales(train: Transitions) -> tuple[np.ndarray, float]:
    """Per-element spread of the state change on non-terminal transitions, and the reward's spread."""
    moving = ~np.asarray(train.done, bool)
    change = (train.next_state - train.state)[moving] if moving.any() else train.next_state - train.state
    state_scale = np.maximum(np.std(change, axis=0), 1e-6).astype(np.float32)
    reward_std = float(np.std(train.reward))
    return state_scale, (reward_std if reward_std > 0 else 1.0)


class Problem:
    """A CWM with parametrised constants and the train split, compiled pieces cached.

    Args:
      make_step: params float32 [P] -> CWM step.
      initial: float32 [P], the constants as written.
      train: the transitions to fit.
      tolerance: what counts as right in the accuracy key the search maximises.
    """

    def __init__(self, make_step: Callable, initial: np.ndarray, train: Transitions,
                 tolerance: accuracy.Tolerance = accuracy.Tolerance()):
        self.make_step = make_step
        self.tolerance = tolerance
        self.initial = np.asarray(initial, np.float32)
        self.data = tuple(jnp.asarray(x) for x in (train.state, train.action, train.next_state, train.reward,
                                                   train.done))
        state_scale, reward_scale = _scales(train)
        self.state_scale, self.reward_scale = jnp.asarray(state_scale), reward_scale
        self.n = len(train)
        self._evaluate = jax.jit(jax.vmap(self._key))

    def loss(self, params: np.ndarray) -> float:
        """The mean squared scaled residual of the constants `params` float32 [P]."""
        return float(jnp.mean(self.residuals(jnp.asarray(params, jnp.float32)) ** 2))

    def residuals(self, params: jax.Array) -> jax.Array:
        """float32 [N * obs_dim + N]: scaled state and reward errors; non-finite ones set to a large constant."""
        state, action, next_state, reward, _ = self.data
        pred_next, pred_reward, _ = jax.vmap(self.make_step(params))(state, action)
        res = jnp.concatenate([((pred_next - next_state) / self.state_scale).ravel(),
                               (pred_reward - reward) / self.reward_scale])
        return jnp.where(jnp.isfinite(res), res, NONFINITE_RESIDUAL)

    def _key(self, params: jax.Array):
        comparison = accuracy.compare(self.make_step(params), self.tolerance, *self.data)
        reward_ok, done_ok = comparison.reward_ok, comparison.done_ok
        state_ok = comparison.element_ok.all(axis=1)
        strict = (state_ok & reward_ok & done_ok).sum()
        loss = jnp.mean(self.residuals(params) ** 2)
        return strict, state_ok.sum() + reward_ok.sum() + done_ok.sum(), (state_ok & reward_ok).sum(), loss

    def evaluate(self, batch: np.ndarray) -> list[Key]:
        """Keys of parameter vectors float32 [B, P]; padded to GRID_POINTS so one compile serves all."""
        batch = np.asarray(batch, np.float32).reshape(-1, len(self.initial))
        keys = []
        for i in range(0, len(batch), GRID_POINTS):
            chunk = batch[i: i + GRID_POINTS]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], GRID_POINTS - len(chunk), axis=0)])
            columns = (np.asarray(x)[: len(chunk)] for x in self._evaluate(jnp.asarray(padded)))
            keys += [Key(int(strict), int(components), int(smooth), loss_bucket(loss))
                     for strict, components, smooth, loss in zip(*columns)]
        return keys

    def sensitive(self, params: np.ndarray) -> np.ndarray:
        """bool [P]: constants the residuals depend on at `params` (nonzero, finite Jacobian column)."""
        jacobian = jax.jit(jax.jacfwd(self.residuals))(jnp.asarray(params, jnp.float32))
        norms = np.asarray(jnp.sqrt(jnp.sum(jnp.where(jnp.isfinite(jacobian), jacobian, 0.0) ** 2, axis=0)))
        return norms > 0


def confounded(problem: Problem, params: np.ndarray, index: np.ndarray) -> list[list[int]]:
    """Groups (indices into `params` [P]) of constants that the data cannot tell apart at `params`.

    The Jacobian of the residuals with respect to the logarithms of the
    constants in `index` (relative changes, columns normalized) is
    decomposed; a singular value below CONFOUNDED_RATIO of the largest is a
    direction in which the constants can move together with no effect on the
    data (e.g. Pendulum's gravity, length and mass scaled as g*k, l*k, m/k**2,
    which leaves 3g/2l and 3/ml**2 alone). The constants with a share of that
    direction form a group: the data pin down a combination of them, not each value.
    """
    if len(index) < 2:
        return []
    jacobian = jax.jit(jax.jacfwd(problem.residuals))(jnp.asarray(params, jnp.float32))
    columns = np.asarray(jnp.where(jnp.isfinite(jacobian), jacobian, 0.0), np.float64)[:, index]
    columns = columns * np.asarray(params, np.float64)[index]
    norms = np.linalg.norm(columns, axis=0)
    if not (norms > 0).all():
        return []
    _, singular, directions = np.linalg.svd(columns / norms, full_matrices=False)
    groups: list[set[int]] = []
    for value, direction in zip(singular, directions):
        if value >= CONFOUNDED_RATIO * singular[0]:
            continue
        members = {int(index[k]) for k in np.flatnonzero(np.abs(direction) > 0.1)}
        joined = [g for g in groups if g & members]
        groups = [g for g in groups if not g & members] + [members.union(*joined)]
    return sorted(sorted(g) for g in groups if len(g) > 1)


def _to_values(base: jax.Array, index: np.ndarray, z: jax.Array) -> jax.Array:
    """params [P]: `base` with entries `index` set to base * exp(z) (or z where base is 0)."""
    start = base[index]
    return base.at[index].set(jnp.where(start != 0, start * jnp.exp(z), z))


def gradient_fit(problem: Problem, base: np.ndarray, index: np.ndarray, settings: FitSettings,
                 log: Callable[[str], None]) -> tuple[list[np.ndarray], dict]:
    """Levenberg-Marquardt from the constants as written; unless that gets state and reward right, Adam from
    several starts (vmapped) and Levenberg-Marquardt from Adam's best end.

    Returns candidate parameter vectors float32 [P] (every Adam and LM end, nearest to the
    constants as written first) and stage seconds.
    """
    base_j = jnp.asarray(base, jnp.float32)

    def residuals(z):
        return problem.residuals(_to_values(base_j, index, z))

    def loss(z):
        return jnp.mean(residuals(z) ** 2)

    optimizer = optax.adam(settings.adam_learning_rate)

    def run_adam(z0):
        def body(carry, _):
            z, state = carry
            grad = jax.grad(loss)(z)
            grad = jnp.where(jnp.isfinite(grad), grad, 0.0)  # a step into a NaN region is skipped
            updates, state = optimizer.update(grad, state)
            return (optax.apply_updates(z, updates), state), None

        (z, _), _ = jax.lax.scan(body, (z0, optimizer.init(z0)), None, length=settings.adam_steps)
        final = loss(z)
        return z, jnp.where(jnp.isfinite(final), final, jnp.inf)

    def run_lm(z0):
        solver = optx.LevenbergMarquardt(rtol=1e-7, atol=1e-9)
        solution = optx.least_squares(lambda z, _: residuals(z), solver, z0, max_steps=settings.lm_steps,
                                      throw=False)
        return solution.value, loss(solution.value)

    def values(z) -> np.ndarray:
        return np.asarray(_to_values(base_j, index, jnp.asarray(z)))

    stages = {}
    ends = []
    lm = jax.jit(run_lm)
    # LM from the constants as written first: its damped steps do not move along directions the
    # data cannot see (non-identifiable constants stay put), and a near miss needs nothing more.
    clock = time.perf_counter()
    z_lm, lm_loss = lm(jnp.zeros((len(index),), jnp.float32))
    ends.append(np.asarray(z_lm))
    stages["lm"] = time.perf_counter() - clock
    log(f"levenberg-marquardt from the constants as written: loss {float(lm_loss):.3g} "
        f"({stages['lm']:.1f} s with compile)")
    # Done if state and reward are right everywhere: what is left (done) has no gradient.
    if np.isfinite(ends[0]).all() and problem.evaluate(values(ends[0]))[0].smooth == problem.n:
        return [values(ends[0])], stages

    key = jax.random.key(settings.seed)
    starts = settings.start_spread * jax.random.normal(key, (settings.starts, len(index)), jnp.float32)
    starts = starts.at[0].set(0.0)  # the constants as written are always one start
    clock = time.perf_counter()
    zs, losses = jax.jit(jax.vmap(run_adam))(starts)
    losses = np.asarray(losses)
    stages["adam"] = time.perf_counter() - clock
    log(f"adam: {settings.starts} starts x {settings.adam_steps} steps, best loss {losses.min():.3g} "
        f"({stages['adam']:.1f} s with compile)")
    clock = time.perf_counter()
    z_lm, lm_loss = lm(zs[int(np.argmin(losses))])
    stages["lm"] += time.perf_counter() - clock
    log(f"levenberg-marquardt from adam's best: loss {float(lm_loss):.3g}")
    ends += [np.asarray(z) for z in zs] + [np.asarray(z_lm)]
    # Accuracy decides; among equals the end nearest the constants as written wins.
    ends = sorted((z for z in ends if np.isfinite(z).all()), key=lambda z: float(np.abs(z).sum()))
    return [values(z) for z in ends], stages


def _plateau_middle(values: np.ndarray, keys: list[Key], best: tuple[int, int]) -> tuple[float, float, float]:
    """(middle, low, high): the run of grid points with accuracy `best` that holds the first one, and its neighbours."""
    accuracies = [k.accuracy for k in keys]
    first = accuracies.index(best)
    last = first
    while last + 1 < len(keys) and accuracies[last + 1] == best:
        last += 1
    low, high = values[max(first - 1, 0)], values[min(last + 1, len(values) - 1)]
    return float(values[(first + last) // 2]), float(low), float(high)


def search_constant(problem: Problem, params: np.ndarray, i: int, is_int: bool, current: Key) -> tuple[np.ndarray, Key]:
    """Bounded 1-D search of constant i on accuracy: a grid, then a finer grid; kept only if it is more accurate.

    The loss takes no part here: moving a threshold to lower the loss of a
    program with the wrong structure would trade one wrong prediction for
    another (only the gradient fit uses the loss).
    """
    value = float(params[i])
    if is_int:
        grid = value + np.arange(-INT_GRID_RANGE, INT_GRID_RANGE + 1, dtype=np.float64)
    elif value != 0:
        grid = np.sort(value * np.exp(np.linspace(-GRID_LOG_RANGE, GRID_LOG_RANGE, GRID_POINTS)))
    else:
        return params, current  # no scale to search on
    for _ in range(1 if is_int else 2):
        batch = np.repeat(params[None], len(grid), axis=0)
        batch[:, i] = grid
        keys = problem.evaluate(batch)
        best = max(keys, key=lambda k: k.accuracy)
        if best.accuracy <= current.accuracy:
            break
        middle, low, high = _plateau_middle(grid, keys, best.accuracy)
        params = params.copy()
        params[i] = middle
        current = problem.evaluate(params[None])[0]
        grid = np.linspace(low, high, GRID_POINTS)
    return params, current
