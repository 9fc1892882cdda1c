"""The maximum-likelihood fit of a CWM with chance (cwm_jax.fit.likelihood_fit through fitting.fit_source)."""

from __future__ import annotations

import numpy as np
import pytest

from cwm_jax import reference
from cwm_jax.data.transitions import load_split
from cwm_jax.envs import slippery_grid
from cwm_jax.fit import fitting
from cwm_jax.score import likelihood
from cwm_jax.validate import chance

GRID = "gymnax/SlipperyGrid"


@pytest.fixture(scope="module")
def splits():
    return {split: load_split(GRID, split) for split in ("train", "test")}


def fit(source, splits):
    return fitting.fit_source(source, GRID, load_split=lambda spec, split: splits[split])


def probabilities(source: str) -> np.ndarray:
    model = chance.load_chance_cwm(source, GRID, check_finite=False)
    return np.exp(np.asarray(model.chance_log_probs(model.afterstate(np.zeros(2, np.float32), np.int32(1)))))


def maximum_likelihood(train) -> np.ndarray:
    """The train split's maximum-likelihood outcome probabilities, by EM on which outcomes match each transition."""
    hit = likelihood.likelihood(chance.ChanceModel(*slippery_grid.TRUE_MODEL), train).hit.astype(float)  # [N, 3]
    p = np.full(3, 1 / 3)
    for _ in range(500):
        responsibility = hit * p / (hit * p).sum(axis=1, keepdims=True)
        p = responsibility.mean(axis=0)
    return p


def test_the_fit_repairs_wrong_probabilities_and_never_lowers_held_out_likelihood(splits):
    three = "P_AS_CHOSEN = 0.8\nP_CCW = 0.05\nP_CW = 0.3"
    source = reference.source(GRID).replace(f"SLIP = {slippery_grid.SLIP}", three)
    source = source.replace("[1.0 - 2.0 * SLIP, SLIP, SLIP]", "[P_AS_CHOSEN, P_CCW, P_CW]")
    report = fit(source, splits)
    assert report.valid and {c["name"] for c in report.changed} >= {"P_CCW", "P_CW"}
    fitted = probabilities(report.program)
    np.testing.assert_allclose(fitted, maximum_likelihood(splits["train"]), atol=0.005)
    # Three free probabilities from about 1,850 transitions: within 3 standard errors (~0.01) of the truth.
    truth = np.array([1 - 2 * slippery_grid.SLIP, slippery_grid.SLIP, slippery_grid.SLIP])
    np.testing.assert_allclose(fitted, truth, atol=0.03)
    assert report.likelihood["test_after"] > report.likelihood["test_before"] + 0.1
    assert report.likelihood["train_after"] > report.likelihood["train_before"]
    # The truth is more likely on test than the train split's estimate, so fitting the reference (whose
    # train likelihood the estimate would raise) must keep it as written.
    kept = fit(reference.source(GRID), splits)
    assert kept.program == reference.source(GRID) and not kept.changed
    assert kept.likelihood["test_after"] == kept.likelihood["test_before"] > report.likelihood["test_after"]
