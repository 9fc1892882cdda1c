"""Fitting the constants of a CWM (`cwm_jax.fit.fitting`, `Sandbox.fit`, `python -m cwm_jax fit`) and the -unknown envs.

One warm Sandbox is shared by every test that fits (a fit is a few compiles).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re

import jax
import numpy as np
import pytest

from cwm_jax import envs, gymnax_env, reference
from cwm_jax.commands import main as cli
from cwm_jax.commands import common as command
from cwm_jax.data import transitions as data
from cwm_jax.fit import fitting as fit
from cwm_jax.fit import constants as fit_constants
from cwm_jax.fit import optimize as fit_optimize
from cwm_jax.validate import loader
from cwm_jax.score import scoring
from cwm_jax.sandbox import Sandbox, default_pool
from tests.hostile_programs import HOSTILE

CARTPOLE = "gymnax/CartPole"
CARTPOLE_UNKNOWN = "gymnax/CartPole-unknown"
# A wrong constant the fit can repair, and a structural error it cannot: reward 0 on the terminal step.
WRONG_STRUCTURE = reference.source(CARTPOLE).replace("GRAVITY = 9.8", "GRAVITY = 9.81").replace(
    "return next_state, jnp.float32(1.0), done",
    "return next_state, jnp.where(done, 0.0, 1.0).astype(jnp.float32), done",
)


@pytest.fixture(scope="module")
def box():
    with Sandbox(size=1) as shared:
        yield shared


# -- constants, found and written back without running anything ----------------


SOURCE = """\
import math
import re
import jax.numpy as jnp

G = 9.8
LOW = -1.2
ANGLE = 12 * 2 * math.pi / 360
TOTAL = G + LOW
STEPS = 3
TWICE = 1.0
TWICE = 2.0


def step(state, action):
    return state * G, jnp.float32(LOW), state[0] > ANGLE
"""


def test_find_constants_takes_literals_unary_minus_and_literal_expressions():
    constants = {c.name: c for c in fit.find_constants(ast.parse(SOURCE))}
    assert set(constants) == {"G", "LOW", "ANGLE", "STEPS"}  # TOTAL is derived, TWICE bound twice
    assert constants["LOW"].value == -1.2 and not constants["LOW"].is_int
    assert constants["ANGLE"].value == pytest.approx(12 * 2 * math.pi / 360)
    assert constants["STEPS"].is_int


def test_write_back_round_trips_float32_and_keeps_the_rest():
    constants = fit.find_constants(ast.parse(SOURCE))
    new = fit.write_back(SOURCE, constants, {"LOW": -1.4567891234, "G": 11.37})
    assert "LOW = -1.4567891\n" in new and "G = 11.37\n" in new
    assert new.replace("-1.4567891", "-1.2").replace("11.37", "9.8") == SOURCE
    for value in (1e-7, 0.00137, 123456.789, -3.3333333):
        assert np.float32(float(fit.format_value(value))) == np.float32(value)


# -- fitting in the sandbox ----------------------------------------------------


def test_textbook_cartpole_fitted_to_unknown_constants_is_exact_on_held_out(box):
    report = box.fit(reference.source(CARTPOLE), CARTPOLE_UNKNOWN)
    assert report.valid and report.exact, report.error
    assert report.before.test_strict_accuracy < 0.1
    assert report.after.train_strict_accuracy == 1.0 and report.after.test_strict_accuracy == 1.0
    changed = {c["name"]: c for c in report.changed}
    assert changed["GRAVITY"]["new"] == pytest.approx(11.37, rel=1e-3)
    assert changed["HALF_LENGTH"]["new"] == pytest.approx(0.61, rel=1e-3)
    assert "THETA_LIMIT" not in changed and "DT" not in changed  # the data need no change there
    # The program is plain source that scores like any other.
    rescored = scoring.score_source(report.program, CARTPOLE_UNKNOWN, splits=("test",))
    assert rescored.summary["strict_accuracy"] == 1.0
    assert json.loads(json.dumps(report.to_dict()))["after"]["test_accuracy"] == 1.0


def test_wrong_structure_is_improved_not_made_exact_and_runs_only_in_the_worker(box, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the program was loaded or run in the main process")

    for module, name in ((fit, "step_factory"), (fit_constants, "step_factory"), (fit, "fit_source"),
                         (loader, "load_cwm"), (scoring, "score_source"), (fit_optimize, "gradient_fit")):
        monkeypatch.setattr(module, name, forbidden)
    assert WRONG_STRUCTURE != reference.source(CARTPOLE).replace("GRAVITY = 9.8", "GRAVITY = 9.81")
    report = box.fit(WRONG_STRUCTURE, CARTPOLE)
    assert report.valid, report.error
    assert not report.exact
    assert [c["name"] for c in report.changed] == ["GRAVITY"]
    assert report.after.train_accuracy > report.before.train_accuracy
    assert report.after.train_strict_accuracy > report.before.train_strict_accuracy
    assert 0.99 < report.after.train_strict_accuracy < 1.0  # the terminal steps' reward stays wrong


def test_zero_gradient_threshold_is_found_by_the_accuracy_search(box):
    source = reference.source(CARTPOLE).replace("THETA_LIMIT = 12 * 2", "THETA_LIMIT = 10 * 2")
    report = box.fit(source, CARTPOLE)
    assert report.valid and report.exact, report.error
    assert report.before.train_strict_accuracy < 1.0 and report.after.test_strict_accuracy == 1.0
    [change] = report.changed
    assert change["name"] == "THETA_LIMIT" and change["new"] == pytest.approx(12 * 2 * math.pi / 360, rel=0.02)
    assert "THETA_LIMIT = 0.2" in report.program  # written back as a number, the rest untouched


@pytest.mark.parametrize("case", HOSTILE[:6], ids=[h.name for h in HOSTILE[:6]])
def test_hostile_programs_are_rejected_by_fit(box, case, tmp_path):
    canary = tmp_path / "canary"
    source = case.render(str(canary))
    report = box.fit(source, CARTPOLE, timeout_s=30)
    assert not report.valid and report.error_kind == case.kind, report.error
    assert report.program == source
    assert not canary.exists()


def test_cli_fit_gravity_981_json_and_out(box, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(default_pool, "default_sandbox", lambda: box)
    model, out = tmp_path / "model.py", tmp_path / "fitted.py"
    model.write_text(reference.source(CARTPOLE).replace("GRAVITY = 9.8", "GRAVITY = 9.81"))
    assert cli.main(["fit", str(model), "--env", CARTPOLE, "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {"valid", "error", "before", "after", "changed", "seconds", "exact", "program"} <= set(payload)
    assert payload["valid"] and payload["exact"]
    assert payload["before"]["test_strict_accuracy"] < 1.0 and payload["after"]["test_strict_accuracy"] == 1.0
    assert [c["name"] for c in payload["changed"]] == ["GRAVITY"]
    assert payload["changed"][0]["new"] == pytest.approx(9.8, rel=1e-4)
    assert out.read_text() == payload["program"]


def test_cli_fit_tolerance_reaches_the_fit(box, monkeypatch, tmp_path, capsys):
    """At --tolerance 1e-3 gravity 9.81 predicts every transition right (about 7e-5 off): nothing to fit.
    (At the default 1e-5 it is refitted to 9.8, the test above.)"""
    monkeypatch.setattr(default_pool, "default_sandbox", lambda: box)
    model = tmp_path / "model.py"
    model.write_text(reference.source(CARTPOLE).replace("GRAVITY = 9.8", "GRAVITY = 9.81"))
    assert cli.main(["fit", str(model), "--env", CARTPOLE, "--json", "--tolerance", "1e-3"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["tolerance"] == {"state_rtol": 1e-3, "state_atol": 1e-3, "reward_rtol": 1e-3, "reward_atol": 1e-3}
    assert payload["before"]["train_strict_accuracy"] == 1.0 and payload["exact"] and payload["changed"] == []


def test_cli_fit_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef step(state, action):\n    return state, 1.0, False\n")
    assert cli.main(["fit", str(bad), "--env", CARTPOLE]) == command.EXIT_FAILED
    assert "line 1: import of `os` is not allowed" in capsys.readouterr().err
    assert cli.main(["fit", str(tmp_path / "missing.py"), "--env", CARTPOLE, "--json"]) == command.EXIT_FAILED
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is False and "does not exist" in payload["error"]
    assert cli.main(["fit", str(bad), "--env", "gymnax/Nope"]) == command.EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown environment" in err and "gymnax/CartPole-unknown" in err and len(err.strip().splitlines()) == 1


def test_fit_past_its_time_limit_is_stopped(box):
    source = reference.source(CARTPOLE).replace("GRAVITY = 9.8", "GRAVITY = 9.7")
    report = box.fit(source, CARTPOLE, timeout_s=1.0)  # last user of the shared worker: it is replaced
    assert not report.valid and report.error_kind == "timeout"
    assert report.error.startswith("fitting took longer than 1 s") and report.program == source


# -- environments with unknown constants ------------------------------------


def _mentions(text: str, value: float) -> bool:
    """`value` (as %g, or with a trailing .0) appears in `text` as a number of its own."""
    forms = {f"{value:g}", f"{value:.1f}"} if value == int(value) else {f"{value:g}"}
    return any(re.search(rf"(?<![\w.]){re.escape(form)}(?![\d])", text) for form in forms)


def test_unknown_variants_are_registered_with_moved_constants(capsys):
    assert cli.main(["envs"]) == 0
    listing = capsys.readouterr().out
    for spec in envs.VARIANT_SPECS:
        assert spec.id in listing
        default = envs.env_spec(spec.name.removesuffix("-unknown"))
        _, params = spec.make_gymnax()
        _, textbook = default.make_gymnax()
        moved = [name for name, _ in spec.gymnax_params
                 if abs(getattr(params, name) / getattr(textbook, name) - 1) >= 0.2]
        assert len(moved) >= 2, spec.name
        # The description says which constants are unknown and gives neither their old nor their new values.
        paragraph = next(p for p in spec.description.split("\n\n") if "infer them from the recorded" in p)
        for name in moved:
            assert not _mentions(spec.description, getattr(params, name)), (spec.name, name)
            assert not _mentions(paragraph, getattr(textbook, name)), (spec.name, name)
    assert envs.env_spec("CartPole-v1").name == "CartPole"  # gymnax's id still means the default


def test_data_oracle_and_cwm_env_use_the_variant_params():
    variant, default = envs.env_spec(CARTPOLE_UNKNOWN), envs.env_spec(CARTPOLE)
    split, meta = data.load_split_with_metadata(variant, "train")
    assert meta["gymnax_params"]["gravity"] == 11.37
    assert data.cache_path(variant, "train") != data.cache_path(default, "train")
    batch = split.take(np.arange(64))
    oracle = jax.jit(jax.vmap(variant.oracle_step))(batch.state, batch.action)
    np.testing.assert_allclose(np.asarray(oracle[0]), batch.next_state, rtol=1e-6, atol=1e-6)
    textbook = np.asarray(jax.jit(jax.vmap(default.oracle_step))(batch.state, batch.action)[0])
    assert not np.allclose(textbook, batch.next_state, rtol=1e-5, atol=1e-5)
    assert gymnax_env.CWMEnv(variant, variant.oracle_step).default_params.gravity == 11.37


def test_docs_description_level():
    for spec in envs.ALL_SPECS:
        docs = spec.description_for("docs")
        assert "Reward" in docs and "Termination" in docs
        assert spec.description_for("full") == spec.description
    assert "9.8" not in envs.env_spec(CARTPOLE).description_for("docs")
    with pytest.raises(ValueError, match="unknown description level"):
        envs.env_spec(CARTPOLE).description_for("terse")
    assert dataclasses.replace(envs.env_spec(CARTPOLE), docs_description="").description != ""


# Pendulum with two errors: a speed always 0.01 too high (structure: a literal inside `step` is not fitted)
# and GRAVITY 7.
APPROXIMATE_PENDULUM = reference.source("gymnax/Pendulum").replace("GRAVITY = 10.0", "GRAVITY = 7.0").replace(
    "jnp.sin(new_theta), new_theta_dot])", "jnp.sin(new_theta), new_theta_dot + 0.01])")


def test_an_approximate_model_is_fitted_closer_though_its_accuracy_cannot_rise(box):
    """No transition is exactly right before or after (the speed is off); the fit still moves GRAVITY
    towards 10, because the loss decides between programs of equal accuracy (an approximate MuJoCo model's case)."""
    assert APPROXIMATE_PENDULUM.count("GRAVITY = 7.0") == 1 and "new_theta_dot + 0.01" in APPROXIMATE_PENDULUM
    report = box.fit(APPROXIMATE_PENDULUM, "gymnax/Pendulum")
    assert report.valid, report.error
    assert report.after.train_strict_accuracy == report.before.train_strict_accuracy == 0.0
    assert report.after.train_accuracy == report.before.train_accuracy
    changed = {c["name"]: c["new"] for c in report.changed}
    assert 8.5 < changed["GRAVITY"] < 11.5
