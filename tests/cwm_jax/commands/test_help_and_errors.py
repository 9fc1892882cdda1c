"""Help, docs-facing messages and library errors a newcomer meets (issue 25, item 8)."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import cwm_jax
from cwm_jax.commands import common as command
from cwm_jax.commands.main import main, parse_args
from cwm_jax.errors import CWMContractError


def test_help_speaks_to_users_not_to_developers(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "cwm-jax envs [ENV]" in out and "Exit status" in out
    assert "add_arguments" not in out and "imports `synth`" not in out


def test_envs_shows_one_environment(capsys):
    assert main(["envs", "Pendulum"]) == command.EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("gymnax/Pendulum (Pendulum-v1): state float32 [3], continuous action [1]")
    assert "angular velocity" in out and "Reward" in out


def test_bench_and_synth_share_the_completion_limit():
    bench = parse_args(["bench", "--methods", "reference"])
    synth = parse_args(["synth", "--env", "CartPole", "--model", "m", "--out", "x"])
    assert bench.max_tokens == synth.max_tokens == 4096


def test_library_errors_name_the_problem():
    with pytest.raises(TypeError, match="load_cwm_file"):
        cwm_jax.load_cwm("model.py", "CartPole")
    with pytest.raises(CWMContractError, match=r"next_state has shape \(3,\); expected \(4,\)"):
        cwm_jax.CWMEnv("gymnax/CartPole", lambda s, a: (s[:3], jnp.float32(0.0), jnp.bool_(False)))
    with pytest.raises(ValueError, match="num_simulations: not a field of CEMConfig"):
        cwm_jax.make_planner("gymnax/Pendulum", lambda s, a: (s, 0.0, False), num_simulations=4)  # an id, too


def test_an_error_description_ends_without_a_period_of_its_own():
    from synth.llm.errors import describe

    assert describe(RuntimeError("Connection error.")) == "RuntimeError: Connection error"
