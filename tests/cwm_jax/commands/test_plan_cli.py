"""experiments/plan.py (the wrapper of `cwm-jax plan`) as a user runs it: clear errors for bad input, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

ROOT = Path(__file__).resolve().parents[3]
PLAN = ROOT / "experiments" / "plan.py"


def run_plan(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PLAN), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def assert_clean_error(proc: subprocess.CompletedProcess, status: int, *needles: str) -> None:
    """`status`: 2 for bad usage, 1 for a rejected model (cwm_jax/commands/common.py)."""
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_unknown_env_lists_the_known_ones():
    proc = run_plan("--env", "gymnax/NoSuchEnv")
    assert_clean_error(proc, 2, "unknown environment", "gymnax/CartPole")


def test_model_file_failing_validation(tmp_path):
    model = tmp_path / "bad.py"
    model.write_text("import os\nimport jax.numpy as jnp\n\ndef step(state, action):\n    return state, 1.0, False\n")
    proc = run_plan("--model", str(model))
    assert_clean_error(proc, 1, "line 1", "os")


def test_model_with_wrong_shapes(tmp_path):
    model = tmp_path / "short.py"
    model.write_text(
        "import jax.numpy as jnp\n\n"
        "def step(state, action):\n"
        "    return state[:3], jnp.float32(1.0), jnp.bool_(False)\n"
    )
    proc = run_plan("--model", str(model))
    assert_clean_error(proc, 1, "shape (3,)", "(4,)")


def test_missing_model_file(tmp_path):
    proc = run_plan("--model", str(tmp_path / "missing.py"))
    assert_clean_error(proc, 1, "does not exist")


def test_wrong_planner_for_the_action_space():
    proc = run_plan("--env", "gymnax/Pendulum", "--planner", "mcts")
    assert_clean_error(proc, 2, "continuous actions")


@pytest.mark.timeout(300)
def test_small_run_writes_json_and_plot(tmp_path):
    out, plot = tmp_path / "out.json", tmp_path / "returns.png"
    proc = run_plan(
        "--env", "gymnax/Catch", "--seeds", "3", "--simulations", "4", "--rollout-depth", "10",
        "--num-rollouts", "2", "--json", str(out), "--plot", str(plot),
    )
    assert proc.returncode == 0, proc.stderr
    assert "reference CWM" in proc.stdout and "compil" in proc.stdout
    assert "normalized return" in proc.stdout
    record = json.loads(out.read_text())
    for key in ("mean_return", "std_return", "normalized_return", "random_return", "oracle_return", "seeds",
                "compile_seconds", "run_seconds", "sims_per_s", "returns"):
        assert key in record, key
    assert record["seeds"] == 3 and len(record["returns"]) == 3
    # The reference CWM reproduces gymnax and plans with the oracle's keys, so
    # model and oracle play the same episodes, seed by seed.
    assert record["returns"] == record["oracle_returns"]
    for key, returns in (("mean_return", "returns"), ("random_return", "random_returns"),
                         ("oracle_return", "oracle_returns")):
        assert record[key] == pytest.approx(sum(record[returns]) / 3), key
    # Eq. 3 from the reported returns: (model - random) / (oracle - random).
    gap = record["oracle_return"] - record["random_return"]
    assert gap > 0, record  # on these seeds the random policy misses at least one ball
    assert record["normalized_return"] == pytest.approx((record["mean_return"] - record["random_return"]) / gap)
    assert record["normalized_return"] == 1.0
    assert plot.stat().st_size > 0


# --------------------------------------------------------------------------- settings, in-process (no planning run)


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--discount", "1.5"], "--discount must be in (0, 1], got 1.5"),
        (["--discount", "0"], "--discount must be in (0, 1], got 0.0"),
        (["--rollout-depth", "0"], "--rollout-depth 0 leaves MCTS without leaf values"),
        (["--horizon", "5"], "--horizon is a CEM option; CartPole plans with MCTS"),
        (["--env", "gymnax/Pendulum", "--simulations", "5"], "--simulations is a MCTS option; Pendulum plans with CEM"),
        (["--env", "gymnax/Pendulum", "--rollout-depth", "0"], "--rollout-depth is a MCTS option; Pendulum plans"),
    ],
)
def test_meaningless_settings_exit_2_with_one_line(capsys, argv, reason):
    from cwm_jax.commands import main as cli

    assert cli.main(["plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and reason in err and err.count("\n") == 1, err


def first_action_model(state, action):
    """reward_t = a_t - 5 a_{t-1}: the first action is worth (1 - 5 discount) a_0, so the
    best a_0 is the box's low end when undiscounted and its high end when discount < 0.2."""
    return jnp.stack([action[0], 0.0, 0.0]), action[0] - 5.0 * state[0], jnp.bool_(False)


def test_cem_uses_the_discount_it_records():
    from cwm_jax import envs
    from cwm_jax.planning import config_from_options, make_planner, settings_record

    spec = envs.env_spec("gymnax/Pendulum")
    options = dict(horizon=3, iterations=3, samples=64, elites=8)
    assert config_from_options(spec, options).discount == 1.0  # the paper's CEM
    config = config_from_options(spec, dict(options, discount=0.1))
    assert settings_record(config)["discount"] == 0.1
    first_action = jax.jit(make_planner(spec, first_action_model, config))(jax.random.key(0), jnp.zeros(3))[0]
    assert first_action > 1.5, "CEM planned undiscounted (it would choose a_0 near -2)"
    assert config_from_options(envs.env_spec("gymnax/CartPole"), {}).discount == 0.99
