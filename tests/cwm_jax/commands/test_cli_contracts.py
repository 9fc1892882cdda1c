"""The `cwm-jax` command's promises for bad input, checked in-process (no JAX compile).

The console script declared in pyproject.toml is called with an argv, as the
installed `cwm-jax` would be. Each kind of bad input gives exit status 2 and
ONE line `error: ...` naming the problem on stderr, before anything is
compiled or run (the rule: cwm_jax/commands/common.py).
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

import cwm_jax
from cwm_jax import envs
from cwm_jax.commands import common as command

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def cwm_jax_command():
    """The function behind the `cwm-jax` console script, found as pip finds it: through pyproject.toml."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["cwm-jax"].split(":")
    return getattr(importlib.import_module(module), function)


def assert_one_line_error(capsys, reason: str) -> None:
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and reason in out.err, out.err
    assert out.err.count("\n") == 1 and "Traceback" not in out.err + out.out


def test_version_and_help(cwm_jax_command, capsys):
    assert cwm_jax_command(["--version"]) == 0
    assert capsys.readouterr().out == f"cwm-jax {cwm_jax.__version__}\n"
    assert cwm_jax_command(["plan", "--help"]) == 0
    assert "--simulations" in capsys.readouterr().out


def test_envs_lists_every_environment(cwm_jax_command, capsys):
    assert cwm_jax_command(["envs"]) == 0
    registered, cwmb_part = capsys.readouterr().out.split("\n\n")
    assert [line.split()[0] for line in registered.splitlines()] == [spec.id for spec in envs.ALL_SPECS]
    from cwm_jax.envs import cwmb

    assert [line.split()[0] for line in cwmb_part.splitlines()[1:]] == list(cwmb.bench_ids())


@pytest.mark.parametrize(
    "argv, reason",
    [
        ([], "the following arguments are required"),
        (["nope"], "invalid choice: 'nope'"),
        (["plan", "--env", "gymnax/Nope"], "unknown environment 'gymnax/Nope'"),
        (["synth", "--env", "gymnax/CartPole", "--model", "m", "--out", "{tmp}", "--budget", "0"],
         "--budget must be at least 1"),
        (["check", "model.py", "--env", "gymnax/Nope"], "unknown environment 'gymnax/Nope'"),
        (["check", "model.py", "--env", "gymnax/CartPole", "--tolerance=-1"], "--tolerance must be a finite number >= 0"),
        (["fit", "model.py", "--env", "gymnax/CartPole", "--timeout", "0"], "--timeout must be positive"),
        (["envs", "--all"], "unrecognized arguments: --all"),
        (["bench", "--methods", "nope"], "unknown method 'nope'"),
        (["train", "--seeds", "0"], "--seeds and --evals must be >= 1"),
    ],
    ids=["none", "unknown", "plan", "synth", "check", "check-tolerance", "fit", "envs", "bench", "train"],
)
def test_every_subcommand_exits_2_with_one_line(cwm_jax_command, capsys, tmp_path, argv, reason):
    assert cwm_jax_command([arg.format(tmp=tmp_path) for arg in argv]) == command.EXIT_USAGE
    assert_one_line_error(capsys, reason)


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--seeds", "many"], "argument --seeds: invalid int value: 'many'"),
        (["--simulations", "0"], "--simulations must be positive, got 0"),
        (["--rollout-depth", "-1"], "--rollout-depth must be positive, got -1"),
        (["--env", "gymnax/Pendulum", "--samples", "10", "--elites", "20"], "need 1 <= --elites <= --samples"),
        (["--env", "gymnax/Pendulum", "--planner", "mcts"], "continuous actions"),
        (["--planner", "cem"], "discrete actions: use --planner mcts"),
        (["--model", "model.txt"], "--model must be 'reference', 'oracle' or a path to a .py file"),
        (["--json", "/no/such/dir/out.json"], "directory '/no/such/dir' does not exist"),
        (["--plot", "/no/such/dir/returns.png"], "directory '/no/such/dir' does not exist"),
    ],
)
def test_plan_bad_input_exits_2_with_one_line(cwm_jax_command, capsys, argv, reason):
    assert cwm_jax_command(["plan", *argv]) == command.EXIT_USAGE
    assert_one_line_error(capsys, reason)


def test_a_missing_model_file_is_a_rejected_model_in_every_subcommand(cwm_jax_command, capsys, tmp_path):
    """The rule: the model is what the user must fix, so a missing file is exit 1 in check, fit, plan and train."""
    missing = str(tmp_path / "missing.py")
    for argv in (["check", missing, "--env", "CartPole"], ["fit", missing, "--env", "CartPole"],
                 ["plan", "--model", missing], ["train", "--model", missing, "--steps", "1024", "--evals", "1"]):
        assert cwm_jax_command(argv) == command.EXIT_FAILED, argv
        err = capsys.readouterr().err
        assert "missing.py" in err and "does not exist" in err and "Traceback" not in err, (argv, err)


def test_ctrl_c_while_compiling_prints_one_line(cwm_jax_command, capsys, monkeypatch):
    from cwm_jax.commands import plan as plan_cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of `evaluate`'s compile

    monkeypatch.setattr(plan_cli, "evaluate", interrupted)
    try:
        status = cwm_jax_command(["plan", "--env", "gymnax/Catch"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command (a traceback for the user)")
    assert status == command.EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "interrupted\n"
