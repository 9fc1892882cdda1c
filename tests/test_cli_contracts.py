"""experiments/plan.py's promises for bad input, checked in-process (no JAX compile).

Each kind of bad input gives exit status 2 and a one-line reason naming the
problem on stderr, before anything is compiled or run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plan_main():
    spec = importlib.util.spec_from_file_location("plan_cli_under_test", ROOT / "experiments" / "plan.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["--env", "gymnax/NoSuchEnv"], "unknown environment"),
        (["--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--simulations", "0"], "--simulations must be positive, got 0"),
        (["--rollout-depth", "-1"], "--rollout-depth must be positive, got -1"),
        (["--env", "gymnax/Pendulum", "--samples", "10", "--elites", "20"], "--elites must not exceed --samples"),
        (["--env", "gymnax/Pendulum", "--planner", "mcts"], "continuous actions"),
        (["--planner", "cem"], "discrete actions: use --planner mcts"),
        (["--model", "model.txt"], "--model must be 'reference', 'oracle' or a path to a .py file"),
        (["--json", "/no/such/dir/out.json"], "directory '/no/such/dir' does not exist"),
        (["--plot", "/no/such/dir/returns.png"], "directory '/no/such/dir' does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(plan_main, capsys, argv, reason):
    assert plan_main(argv) == 2
    out = capsys.readouterr()
    assert out.err.startswith("error: ") and reason in out.err, out.err
    assert out.err.count("\n") == 1 and "Traceback" not in out.err + out.out


def test_a_malformed_option_exits_2(plan_main, capsys):
    with pytest.raises(SystemExit) as exc:  # argparse's own usage error
        plan_main(["--seeds", "many"])
    assert exc.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
