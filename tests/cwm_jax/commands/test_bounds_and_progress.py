"""Bounds and progress on long work (issue 25, item 6)."""

from __future__ import annotations

import time

import pytest

from cwm_jax import envs
from cwm_jax.commands import common as command
from cwm_jax.commands.main import main
from cwm_jax.errors import UsageError
from cwm_jax.planning import check_search_memory, planner_config


def test_a_search_too_big_for_the_machine_is_refused_before_any_work(capsys):
    spec = envs.env_spec("CartPole")
    assert check_search_memory(spec, planner_config(spec), 16) < 2**20  # the defaults: well under 1 MiB
    with pytest.raises(ValueError, match="needs about 15.6 GiB"):
        check_search_memory(spec, planner_config(spec, num_simulations=100_000_000), 1, limit=2**30)
    assert main(["plan", "--simulations", "100000000", "--seeds", "1000"]) == command.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: MCTS over 1000 seeds at once needs about") and err.count("\n") == 1


def test_progress_ticks_while_the_block_runs(capsys):
    with command.progress("working", every=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("  working: ") and line.endswith(" s") for line in lines)
    time.sleep(0.1)
    assert capsys.readouterr().err == ""  # stopped with the block


def test_check_takes_a_timeout(capsys):
    assert main(["check", "model.py", "--env", "CartPole", "--timeout", "0"]) == command.EXIT_USAGE
    assert "--timeout must be positive" in capsys.readouterr().err


def test_train_says_how_its_steps_round(monkeypatch, capsys):
    from cwm_jax.commands import train as train_cli

    def stop(*args, **kwargs):
        raise UsageError("stopped here")

    monkeypatch.setattr(train_cli, "training_env", stop)
    assert main(["train", "--steps", "10000", "--seeds", "1"]) == command.EXIT_USAGE
    assert "10,000 steps round down to 5,120 model steps per seed" in capsys.readouterr().out
