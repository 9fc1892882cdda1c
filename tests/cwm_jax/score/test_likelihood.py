"""Likelihood scoring of CWMs with chance (docs/chance.md) on SlipperyGrid's held-out split."""

from __future__ import annotations

import numpy as np
import pytest

from cwm_jax import envs, reference
from cwm_jax.data.transitions import load_split
from cwm_jax.envs import slippery_grid
from cwm_jax.score import likelihood
from cwm_jax.validate import chance

GRID = "gymnax/SlipperyGrid"



def wrong_probabilities(slip: float = 0.05) -> str:
    return reference.source(GRID).replace(f"SLIP = {slippery_grid.SLIP}", f"SLIP = {slip}")


@pytest.fixture(scope="module")
def test_split():
    return load_split(GRID, "test")


@pytest.fixture(scope="module")
def reports(test_split):
    spec = envs.env_spec(GRID)
    models = {
        "true": chance.ChanceModel(*slippery_grid.TRUE_MODEL),
        "reference": chance.load_chance_cwm(reference.source(GRID), spec),
        "wrong": chance.load_chance_cwm(wrong_probabilities(), spec),
        "deterministic": chance.load_chance_cwm(reference.deterministic_source(GRID), spec),
    }
    return {name: likelihood.likelihood(model, test_split) for name, model in models.items()}


def paired_gap(better, worse) -> tuple[float, float]:
    """Mean per-transition log-likelihood gap (floored) and its standard error."""
    floor = np.log(likelihood.PROBABILITY_FLOOR)
    gap = np.maximum(better.log_prob, floor) - np.maximum(worse.log_prob, floor)
    return float(gap.mean()), float(gap.std() / np.sqrt(len(gap)))


def test_the_reference_is_as_likely_as_the_true_environment(reports):
    ref, true = reports["reference"], reports["true"]
    gap, sem = paired_gap(true, ref)
    assert abs(gap) <= 2 * sem + 1e-6
    assert ref.summary()["support_accuracy"] == 1.0
    assert ref.summary()["calibration_error"] < 0.02
    # about the entropy of the recorded outcomes (60% as chosen, 20% each slide; walls merge some outcomes)
    assert -1.0 < ref.summary()["log_likelihood"] < -0.7


@pytest.mark.parametrize("worse", ["wrong", "deterministic"])
def test_wrong_probabilities_and_a_deterministic_model_score_clearly_lower(reports, worse):
    gap, sem = paired_gap(reports["reference"], reports[worse])
    assert gap > 5 * sem and gap > 0.1
    assert reports[worse].summary()[likelihood.LIKELIHOOD_VALUE] < reports["reference"].summary()[
        likelihood.LIKELIHOOD_VALUE] - 0.05
    assert reports[worse].summary()["calibration_error"] > 0.1


def test_support_accuracy_counts_the_transitions_a_model_calls_impossible(reports, test_split):
    summary = reports["deterministic"].summary()
    slid = 1.0 - summary["support_accuracy"]
    assert 0.25 < slid < 0.5 and summary["n_unsupported"] == round(slid * len(test_split))
    assert summary["raw_log_likelihood"] == -np.inf and np.isfinite(summary["log_likelihood"])


def test_the_calibration_table_is_the_reliability_diagram(reports):
    predicted, observed, weight, ece = likelihood.calibration_table(reports["reference"])
    used = weight > 0
    assert set(np.round(predicted[used], 2)) <= {0.2, 0.4, 0.6, 0.8, 1.0}
    np.testing.assert_allclose(observed[used], predicted[used], atol=0.05)
    assert ece == pytest.approx(reports["reference"].summary()["calibration_error"])
