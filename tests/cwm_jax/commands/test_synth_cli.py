"""`cwm-jax synth` (cwm_jax/commands/synth.py): exit codes 0/1/2/3/130 and the ablation flags, on the loopback server."""

from __future__ import annotations

import contextlib
import json
import sys
import types

import pytest

from cwm_jax.commands import main as cli
from cwm_jax.commands import common as command
from cwm_jax.score.accuracy import Tolerance
from cwm_jax import sandbox as sandbox_module
from cwm_jax.sandbox import Sandbox
from synth.testing import scripted_llm
from synth.testing.llm_server import LLMTestServer


def synth(argv: list[str]) -> int:
    return cli.main(["synth", *argv])


@pytest.fixture(scope="module")
def shared_sandbox():
    with Sandbox(warm_envs=["CartPole"]) as box:
        yield box


@pytest.fixture()
def use_shared_sandbox(monkeypatch, shared_sandbox):
    """The CLI starts its own sandbox; hand it the module's (already warm) one instead."""
    monkeypatch.setattr(sandbox_module, "Sandbox", lambda **kwargs: contextlib.nullcontext(shared_sandbox))


@pytest.fixture()
def server():
    with LLMTestServer(responder=scripted_llm.responder) as srv:
        yield srv




def _argv(server, out, *extra):
    return ["--env", "gymnax/CartPole", "--model", server.model, "--base-url", server.base_url,
            "--out", str(out), "--no-fit", *extra]


def test_exit_1_when_no_program_is_valid(server, use_shared_sandbox, tmp_path, capsys):
    # Without fix, every generate of the scripted model crashes.
    assert synth(_argv(server, tmp_path, "--budget", "2", "--no-fix")) == command.EXIT_FAILED == 1
    assert "no valid program" in capsys.readouterr().err


def test_exit_0_and_no_improve_never_asks_for_an_improve(server, use_shared_sandbox, tmp_path, capsys):
    assert synth(_argv(server, tmp_path, "--budget", "4", "--no-improve")) == 0
    assert "best program" in capsys.readouterr().out and (tmp_path / "best.py").exists()
    prompts = [r["messages"][-1]["content"] for r in server.chat_requests]
    assert len(prompts) == 4 and not any(scripted_llm.IMPROVE_PROMPT in p for p in prompts)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["train_accuracy"] < 1.0  # only improve turns the scripted WRONG into CORRECT


def test_exit_2_on_bad_usage(server, tmp_path, capsys):
    assert synth(_argv(server, tmp_path, "--env", "gymnax/NoSuchEnv")) == command.EXIT_USAGE == 2
    assert "NoSuchEnv" in capsys.readouterr().err
    (tmp_path / "checkpoint.json").write_text("{}")
    assert synth(_argv(server, tmp_path)) == 2
    assert "--resume" in capsys.readouterr().err
    assert synth(_argv(server, tmp_path / "x", "--value", "mean")) == 2
    assert "invalid choice: 'mean'" in capsys.readouterr().err
    assert synth(_argv(server, tmp_path / "x", "--description", "terse")) == 2
    assert "invalid choice: 'terse'" in capsys.readouterr().err
    assert synth(_argv(server, tmp_path / "x", "--budget", "0")) == 2
    assert capsys.readouterr().err == "error: --budget must be at least 1\n"
    for tolerance in ("-1e-5", "nan", "inf"):  # (a negative number in exponent form needs `=`: argparse)
        assert synth(_argv(server, tmp_path / "x", f"--tolerance={tolerance}")) == 2
        assert capsys.readouterr().err == f"error: --tolerance must be a finite number >= 0, got {float(tolerance)}\n"
    (tmp_path / "summary.json").write_text(json.dumps({"tolerance": Tolerance()._asdict()}))
    assert synth(_argv(server, tmp_path, "--resume", "--tolerance", "0.01")) == 2  # the run was scored at 1e-5
    assert "resume it with the same tolerance (--tolerance)" in capsys.readouterr().err


def test_exit_3_when_the_endpoint_is_unreachable(use_shared_sandbox, tmp_path, capsys):
    argv = ["--env", "gymnax/CartPole", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--out",
            str(tmp_path), "--budget", "2", "--timeout", "2"]
    assert synth(argv) == command.EXIT_ENDPOINT == 3
    assert "127.0.0.1:9" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_a_resume_line(monkeypatch, server, use_shared_sandbox, tmp_path, capsys):
    from synth.search import run

    def interrupted(*args, **kwargs):
        summary = {"calls": 2}
        raise run.SynthesisInterrupted(run.SynthesisResult(summary=summary, best_program=None, out_dir=tmp_path))

    monkeypatch.setattr(run, "synthesize", interrupted)
    argv = _argv(server, tmp_path, "--budget", "5")
    assert synth(argv) == command.EXIT_INTERRUPTED == 130
    err = capsys.readouterr().err
    assert "interrupted after 2 calls" in err and err.rstrip().endswith("--resume")
    assert f"Continue with: cwm-jax synth {' '.join(argv)} --resume" in err
    assert "Traceback" not in err and sys.exc_info() == (None, None, None)


@pytest.mark.parametrize("no_fit", [False, True])
def test_options_reach_the_search(monkeypatch, tmp_path, capsys, no_fit):
    """Plumbing only: a fake sandbox with a `fit`, and a synthesize that records what it was given."""
    from synth.search import run

    fake_box = types.SimpleNamespace(fit=lambda source, env: None)
    monkeypatch.setattr(sandbox_module, "Sandbox", lambda **kwargs: contextlib.nullcontext(fake_box))
    seen = {}

    def fake_synthesize(env, **kwargs):
        seen.update(kwargs)
        summary = {"stop_reason": "budget", "calls": 1, "failed_calls": 0, "fits": 0, "tokens": 3, "cost": None,
                   "wall_seconds": 0.1, "best_node": 1, "best_action": "generate", "value": "strict",
                   "values": {"train": {"paper": 0.9, "strict": 0.5}, "test": {"paper": 0.8, "strict": 0.4}}}
        return run.SynthesisResult(summary=summary, best_program="x = 1\n", out_dir=tmp_path)

    monkeypatch.setattr(run, "synthesize", fake_synthesize)
    argv = ["--env", "gymnax/CartPole", "--model", "m", "--out", str(tmp_path), "--top-p", "0.8",
            "--max-tokens", "1000", "--prefill", "--cache", str(tmp_path / "c.sqlite"), "--value", "strict",
            "--paper-faithful", "--description", "docs", "--tolerance", "0.001"] + (["--no-fit"] if no_fit else [])
    assert synth(argv) == 0
    sampling = seen["sampling"]
    assert (sampling.top_p, sampling.max_tokens, sampling.prefill, sampling.temperature) == (0.8, 1000, True, 1.0)
    assert (seen["cache"], seen["value"], seen["paper_faithful"]) == (str(tmp_path / "c.sqlite"), "strict", True)
    # By default the search fits with the sandbox's own `fit` (the real `Sandbox.fit` outside this test).
    assert seen["fitter"] is (None if no_fit else fake_box.fit) and seen["sandbox"] is fake_box
    assert seen["description"] == "docs" and seen["tolerance"] == Tolerance(1e-3, 1e-3, 1e-3, 1e-3)
    out = capsys.readouterr().out
    assert ("fit step: off" in out) == no_fit and "strict: train 0.5000, test 0.4000" in out


def test_demo_runs_the_search_against_the_scripted_model(monkeypatch, capsys):
    """`synth --demo`: the real command, answered by the scripted model on loopback (no network, no LLM)."""
    import urllib.request

    from cwm_jax.commands import synth as synth_cli

    seen = []

    def search(args):  # stands for the search the other tests run on this server: here, what it is pointed at
        request = urllib.request.Request(f"{args.base_url}/chat/completions", method="POST",
                                         headers={"Content-Type": "application/json"},
                                         data=json.dumps({"model": args.model, "messages": [
                                             {"role": "user", "content": "write it"}]}).encode())
        with urllib.request.urlopen(request, timeout=30) as reply:
            seen.append((args.env, json.loads(reply.read())["choices"][0]["message"]["content"]))
        return command.EXIT_OK

    monkeypatch.setattr(synth_cli, "_synthesize", search)
    assert synth(["--demo", "--out", "unused"]) == command.EXIT_OK
    assert seen == [("gymnax/CartPole", scripted_llm.responder({"messages": [{"content": "write it"}]}))]
    assert synth(["--demo", "--env", "Acrobot", "--out", "unused"]) == command.EXIT_USAGE
    assert synth(["--out", "unused"]) == command.EXIT_USAGE  # no --env/--model without --demo
    assert "--demo" in capsys.readouterr().err


# -- a stochastic environment end to end (docs/chance.md) ----------------------------------------------------

GRID = "gymnax/SlipperyGrid"


def chance_responder(request: dict) -> str:
    """SlipperyGrid's scripted model: the deterministic program first; the likelihood's feedback (a recorded
    slide the program calls impossible) gets chance with wrong probabilities; the feedback on that (the least
    likely transition) gets the right ones. The three share their paper accuracy: their most likely outcome
    is the same move, so only likelihood scoring ranks the last one best."""
    from cwm_jax import reference

    user = request["messages"][-1]["content"]
    if "impossible under the model" in user:
        return scripted_llm.answer(reference.source(GRID).replace("SLIP = 0.2", "SLIP = 0.02"), "it slides")
    if "least of all recorded transitions" in user:
        return scripted_llm.answer(reference.source(GRID), "slides are more frequent")
    return scripted_llm.answer(reference.deterministic_source(GRID))


def test_synth_and_check_on_a_stochastic_env_score_by_likelihood(monkeypatch, use_shared_sandbox, shared_sandbox,
                                                                  tmp_path, capsys):
    from cwm_jax import reference
    from cwm_jax.sandbox import default_pool

    monkeypatch.setattr(default_pool, "_DEFAULT", shared_sandbox)  # `check` scores in the same warm worker
    with LLMTestServer(responder=chance_responder) as server:
        argv = ["--env", GRID, "--model", server.model, "--base-url", server.base_url, "--out", str(tmp_path),
                "--no-fit", "--budget", "3", "--method", "worldcoder"]
        assert synth(argv) == 0
    assert (tmp_path / "best.py").read_text() == reference.source(GRID)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test"]["support_accuracy"] == 1.0 and summary["values"]["test"]["paper"] < 0.5
    capsys.readouterr()
    assert cli.main(["check", str(tmp_path / "best.py"), "--env", GRID, "--split", "test", "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["likelihood_value"] == pytest.approx(summary["values"]["test"]["paper"])
    assert checked["calibration_error"] < 0.02 and checked["accuracy"] < 0.9
    # The synthesized chance program plans, as the sandbox exported and scored it (stochastic MCTS).
    assert cli.main(["plan", "--env", GRID, "--model", str(tmp_path / "best.py"), "--seeds", "2", "--simulations",
                     "8", "--rollout-depth", "5", "--num-rollouts", "2"]) == command.EXIT_OK
    assert "planned with stochastic MCTS" in capsys.readouterr().out
