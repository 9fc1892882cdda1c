"""Every reference CWM scores 1.0 on the held-out split; hand-made mutants do not.

A mutant changes one thing (a physical constant, a termination threshold, a
reward term) and must score below 1.0 with a counterexample that names the
component it broke.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from cwm_jax import envs, reference
from cwm_jax.score import accuracy
from cwm_jax.data import transitions as data
from cwm_jax.validate import loader

# env name -> [(mutant label, text to replace, replacement, component that must fail)]
MUTANTS = {
    "CartPole": [
        ("gravity", "GRAVITY = 9.8", "GRAVITY = 9.81", "next_state"),
        ("angle limit", "THETA_LIMIT = 12 *", "THETA_LIMIT = 11 *", "done"),
        ("reward", "jnp.float32(1.0), done", "jnp.where(done, 0.0, 1.0).astype(jnp.float32), done", "reward"),
    ],
    "Acrobot": [
        ("gravity", "GRAVITY = 9.8", "GRAVITY = 9.81", "next_state"),
        ("goal height", "> 1.0", "> 0.95", "done"),
        ("reward", "jnp.where(done, 0.0, -1.0)", "jnp.where(done, 1.0, -1.0)", "reward"),
    ],
    "MountainCar": [
        ("force", "FORCE = 0.001", "FORCE = 0.0011", "next_state"),
        ("goal", "GOAL_POSITION = 0.5", "GOAL_POSITION = 0.45", "done"),
        ("reward", "jnp.float32(-1.0), done", "jnp.where(done, 0.0, -1.0).astype(jnp.float32), done", "reward"),
    ],
    "MountainCarContinuous": [
        ("power", "POWER = 0.0015", "POWER = 0.0016", "next_state"),
        ("goal", "GOAL_POSITION = 0.45", "GOAL_POSITION = 0.5", "done"),
        ("reward", "100.0 * done", "10.0 * done", "reward"),
    ],
    "Pendulum": [
        ("gravity", "GRAVITY = 10.0", "GRAVITY = 9.8", "next_state"),
        ("reward", "0.1 * theta_dot**2", "0.01 * theta_dot**2", "reward"),
    ],
    "Catch": [
        ("bottom row", "done = ball_row == ROWS - 1", "done = ball_row == ROWS - 2", "done"),
        ("miss penalty", "1.0, -1.0), 0.0)", "1.0, 0.0), 0.0)", "reward"),
    ],
    "Reacher": [
        ("time step", "DT = 0.05", "DT = 0.051", "next_state"),
        ("reward", "jnp.exp(-1 * jnp.sum", "jnp.exp(-2 * jnp.sum", "reward"),
    ],
    "Swimmer": [
        ("time step", "DT = 0.05", "DT = 0.051", "next_state"),
        ("reward", "goal_term * jnp.prod(urchin_terms, axis=-1)", "goal_term", "reward"),
    ],
    "DeepSea": [
        ("move cost", "MOVE_COST = 0.01", "MOVE_COST = 0.02", "reward"),
        ("bottom row", "done = next_row == SIZE", "done = next_row == SIZE - 1", "done"),
    ],
    "DiscountingChain": [
        ("best chain", "REWARDS = (1.1, 1.0,", "REWARDS = (1.0, 1.0,", "reward"),
        ("time scale", "time.astype(jnp.float32) / TIME_SCALE", "time.astype(jnp.float32) / 99.0", "next_state"),
    ],
}


def test_every_registered_env_has_mutants():
    assert {spec.name for spec in envs.SPECS} <= set(MUTANTS)


@pytest.mark.parametrize("spec", envs.SPECS, ids=lambda s: s.name)
def test_reference_scores_one_on_held_out_split(spec):
    report = accuracy.check(loader.load_reference(spec), data.load_split(spec, "test"))
    assert report.strict_accuracy == 1.0, accuracy.format_counterexamples(
        accuracy.counterexamples(report, data.load_split(spec, "test"), 1))


CASES = [(name, *mutant) for name, mutants in MUTANTS.items() for mutant in mutants]


@pytest.mark.parametrize("env,label,old,new,component", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_mutant_scores_below_one_and_names_the_component(env, label, old, new, component):
    source = reference.source(env)
    assert source.count(old) == 1, f"mutation {label!r} does not apply to the {env} reference"
    split = data.load_split(env, "test")
    report = accuracy.check(loader.load_cwm(source.replace(old, new), env), split)
    assert report.accuracy < 1.0
    failures = accuracy.counterexamples(report, split, k=len(report.failures))
    assert any(component in example.failed for example in failures)


def test_a_fresh_interpreter_loads_the_reference_that_calls_into_c_code_that_imports():
    # jax's and numpy's C code imports through the builtins of the Python frame on top, the CWM's:
    # Pendulum's jnp.arctan2 failed with "import of 'numpy' is not allowed" in a fresh process.
    code = "from cwm_jax.validate import loader\nloader.load_reference('gymnax/Pendulum')\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[3])
    assert run.returncode == 0, run.stderr


def test_an_import_statement_of_the_cwm_is_still_refused_at_run_time():
    namespace = loader.restricted_namespace()  # what the validator would have stopped first
    with pytest.raises(ImportError, match="import of 'os' is not allowed"):
        exec(compile("import os", loader.FILENAME, "exec"), namespace)
    exec(compile("import math", loader.FILENAME, "exec"), namespace)
    assert namespace["math"].pi > 3
