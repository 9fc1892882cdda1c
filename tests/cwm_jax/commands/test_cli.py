"""`python -m cwm_jax` (the `cwm-jax` command) in a subprocess: `check` on model files, `plan` on bad input."""

import json
import subprocess
import sys

from cwm_jax import reference

KEYS = {"valid", "error", "accuracy", "strict_accuracy", "state_accuracy", "reward_accuracy", "done_accuracy",
        "n_transitions"}


def _check(*args):
    return subprocess.run([sys.executable, "-m", "cwm_jax", "check", *args], capture_output=True, text=True,
                          timeout=300)


def test_check_scores_a_valid_model_on_the_held_out_split(tmp_path):
    model = tmp_path / "model.py"
    model.write_text(reference.source("CartPole").replace("GRAVITY = 9.8", "GRAVITY = 9.81"))
    run = _check(str(model), "--env", "gymnax/CartPole", "--split", "test", "--json")
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    assert KEYS <= set(payload)
    assert payload["valid"] and payload["error"] is None
    assert 0.9 < payload["accuracy"] < 1.0 and payload["n_transitions"] > 1000
    # gravity 9.81 is about 1e-4 off after one step: right within --tolerance 1e-2, which the record names.
    loose = json.loads(_check(str(model), "--env", "gymnax/CartPole", "--split", "test", "--json",
                              "--tolerance", "1e-2").stdout)
    assert loose["accuracy"] == 1.0 and loose["tolerance"]["state_atol"] == 1e-2


def test_check_rejects_with_the_validator_message(tmp_path):
    model = tmp_path / "bad.py"
    model.write_text("import os\n\ndef step(state, action):\n    return state, 1.0, False\n")
    run = _check(str(model), "--env", "CartPole-v1")
    assert run.returncode == 1
    assert "line 1: import of `os` is not allowed" in run.stderr
    as_json = _check(str(model), "--env", "CartPole", "--json")
    assert as_json.returncode == 1
    payload = json.loads(as_json.stdout)
    assert payload["valid"] is False and "os" in payload["error"] and payload["accuracy"] is None


def test_check_unknown_env_lists_known_ones(tmp_path):
    run = _check(str(tmp_path / "m.py"), "--env", "gymnax/Nope")
    assert run.returncode == 2
    assert "unknown environment" in run.stderr and "gymnax/CartPole" in run.stderr


def test_plan_unknown_env_exits_2_with_one_line():
    run = subprocess.run([sys.executable, "-m", "cwm_jax", "plan", "--env", "gymnax/Nope"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: unknown environment 'gymnax/Nope'") and run.stderr.count("\n") == 1
    assert "gymnax/CartPole" in run.stderr
