"""No silent wrong answers (issue 25, item 7): NaN outputs, non-identifiable constants, negative counts."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from cwm_jax.commands import common as command
from cwm_jax.commands.main import main
from cwm_jax.data.transitions import Transitions
from cwm_jax.score import accuracy
from cwm_jax.score.scoring import ScoreResult

REFERENCE = str(Path(__file__).resolve().parents[3] / "cwm_jax" / "reference" / "cartpole.py")


def test_nan_predictions_are_counted():
    state = np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2)
    data = Transitions(state, np.zeros(10, np.int32), state, np.ones(10, np.float32), np.zeros(10, bool),
                       np.zeros(10, np.int32))

    def step(s, a):  # NaN reward on 3 of the 10 transitions
        return s, jnp.where(s[0] > 0.3, jnp.nan, 1.0).astype(jnp.float32), jnp.bool_(False)

    report = accuracy.check(step, data)
    assert report.non_finite == int((state[:, 0] > 0.3).sum()) == 3
    assert report.summary()["non_finite"] == 3


def _scored(non_finite: int) -> ScoreResult:
    summary = {"accuracy": 0.9, "strict_accuracy": 0.8, "state_accuracy": 1.0, "reward_accuracy": 0.8,
               "done_accuracy": 1.0, "weighted_accuracy": 0.9, "n_transitions": 100, "non_finite": non_finite}
    return ScoreResult(valid=True, summaries={"train": summary})


def test_check_warns_of_nan_outputs(monkeypatch, capsys):
    from cwm_jax import sandbox

    monkeypatch.setattr(sandbox, "score_file", lambda *a, **k: _scored(20))
    assert main(["check", REFERENCE, "--env", "CartPole"]) == command.EXIT_OK
    err = capsys.readouterr().err
    assert err.startswith("warning: the model returns NaN or inf") and "20 of 100 train" in err
    assert main(["check", REFERENCE, "--env", "CartPole", "--json"]) == command.EXIT_OK
    assert '"non_finite": 20' in capsys.readouterr().out
    monkeypatch.setattr(sandbox, "score_file", lambda *a, **k: _scored(0))
    assert main(["check", REFERENCE, "--env", "CartPole"]) == command.EXIT_OK
    assert capsys.readouterr().err == ""


def test_plan_warns_of_a_model_with_nan_outputs(monkeypatch):
    from cwm_jax import envs, models

    monkeypatch.setattr(models, "sandboxed_step", lambda source, spec: (lambda s, a: (s, 1.0, False), _scored(7)))
    warned = []
    models.load_model(envs.env_spec("CartPole"), REFERENCE, say=lambda text: None, warn=warned.append)
    assert len(warned) == 1 and "7 of 100 train transitions" in warned[0]


def test_negative_counterexamples_are_refused(capsys):
    assert main(["check", REFERENCE, "--env", "CartPole", "--counterexamples", "-2"]) == command.EXIT_USAGE
    assert capsys.readouterr().err == "error: --counterexamples must be >= 0, got -2\n"


def test_fit_says_which_constants_moved_together(monkeypatch, capsys):
    from cwm_jax import sandbox
    from cwm_jax.fit.fitting import Accuracies, FitReport

    acc = Accuracies(train_accuracy=1.0, test_accuracy=1.0, train_strict_accuracy=1.0, test_strict_accuracy=1.0)
    report = FitReport(valid=True, program="x", before=acc, after=acc, exact=True,
                       changed=({"name": "GRAVITY", "old": 9.8, "new": 13.7},),
                       confounded=(("GRAVITY", "MASS", "LENGTH"),))
    assert FitReport.from_dict(report.to_dict()) == report  # it survives the sandbox's JSON
    monkeypatch.setattr(sandbox, "fit_source", lambda *a, **k: report)
    assert main(["fit", REFERENCE, "--env", "CartPole"]) == command.EXIT_OK
    out = capsys.readouterr().out
    assert "not identifiable from these data: GRAVITY, MASS, LENGTH can move together" in out
