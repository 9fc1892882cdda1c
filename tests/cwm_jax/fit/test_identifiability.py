"""Which constants the data cannot tell apart (`optimize.confounded`), and constants written as NaN (issue 25, item 7)."""

from __future__ import annotations

import ast

import jax.numpy as jnp
import numpy as np

from cwm_jax.data.transitions import Transitions
from cwm_jax.fit import optimize
from cwm_jax.fit.constants import find_constants, non_finite_constants


def _problem(make_step, initial) -> optimize.Problem:
    rng = np.random.default_rng(0)
    state = rng.normal(size=(64, 2)).astype(np.float32)
    action = rng.integers(0, 2, size=64).astype(np.int32)
    next_state = np.asarray(jnp.stack([state[:, 0] * 1.5, state[:, 1] + 0.3 * action], axis=1), np.float32)
    train = Transitions(state, action, next_state, np.ones(64, np.float32), np.zeros(64, bool),
                        np.zeros(64, np.int32))
    return optimize.Problem(make_step, np.asarray(initial, np.float32), train)


def test_constants_that_act_only_through_a_product_are_reported_together():
    # next x = x * A * B (only A*B is seen), next y = y + C * action: A and B confounded, C not.
    def make_step(p):
        return lambda s, a: (jnp.stack([s[0] * p[0] * p[1], s[1] + p[2] * a]), jnp.float32(1.0), jnp.bool_(False))

    problem = _problem(make_step, [1.0, 1.5, 0.3])
    assert optimize.confounded(problem, problem.initial, np.array([0, 1, 2])) == [[0, 1]]

    def make_separate(p):  # A scales x, B shifts it: both seen
        return lambda s, a: (jnp.stack([s[0] * p[0] + p[1], s[1] + p[2] * a]), jnp.float32(1.0), jnp.bool_(False))

    problem = _problem(make_separate, [1.5, 0.1, 0.3])
    assert optimize.confounded(problem, problem.initial, np.array([0, 1, 2])) == []


def test_a_constant_written_as_nan_is_named():
    tree = ast.parse("import math\nG = math.nan\nH = -math.inf\nL = 2.0\n")
    assert non_finite_constants(tree) == [("G", "math.nan"), ("H", "-math.inf")]
    assert [c.name for c in find_constants(tree)] == ["L"]
