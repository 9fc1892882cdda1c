"""GIF-MCTS and its baselines against a scripted fallible LLM on a loopback server."""

import json
import shutil

import pytest

from cwm_jax.sandbox import Sandbox
from synth.llm import LLMConfig
from synth.run import synthesize
from tests import scripted_llm
from tests.llm_server import LLMTestServer


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(warm_envs=["CartPole"]) as box:
        yield box


@pytest.fixture()
def server():
    with LLMTestServer(responder=scripted_llm.responder) as srv:
        yield srv


def _run(server, sandbox, out, **kwargs):
    config = LLMConfig(model=server.model, base_url=server.base_url, max_retries=1, backoff_base=0.01)
    kwargs.setdefault("method", "gif-mcts")
    kwargs.setdefault("budget", 10)
    return synthesize("gymnax/CartPole", llm=config, out_dir=out, sandbox=sandbox, **kwargs)


def _prompts(server):
    return [r["messages"][-1]["content"] for r in server.chat_requests]


def test_gif_mcts_climbs_to_one_with_feedback(server, sandbox, tmp_path):
    result = _run(server, sandbox, tmp_path)
    summary = result.summary
    assert summary["train_accuracy"] == 1.0 and summary["test_accuracy"] == 1.0
    assert summary["calls"] <= 10 and summary["stop_reason"] == "solved"
    prompts = _prompts(server)
    # The fix prompt carried the loader's message; the improve prompt a failing transition.
    assert any(scripted_llm.FIX_PROMPT in p and "jnp.where" in p for p in prompts)
    assert any(scripted_llm.IMPROVE_PROMPT in p and "expected next_state" in p for p in prompts)
    assert (tmp_path / "best.py").read_text().count("GRAVITY = 9.8\n") == 1
    log = [json.loads(line) for line in (tmp_path / "tree.jsonl").read_text().splitlines()]
    assert [r["action"] for r in log][:3] == ["generate", "fix", "improve"]
    assert {"id", "parent", "action", "prompt_hash", "program", "value", "error", "tokens", "seconds"} <= set(log[0])
    assert "highlighted" in (tmp_path / "tree.html").read_text()


def test_no_fix_ablation_fails_where_full_search_succeeds(server, sandbox, tmp_path):
    result = _run(server, sandbox, tmp_path, budget=6, actions=("generate", "improve"))
    assert result.summary["train_accuracy"] is None and result.best_program is None
    assert not (tmp_path / "best.py").exists()
    assert result.summary["calls"] == 6


@pytest.mark.parametrize("method", ["worldcoder", "zero-shot"])
def test_baselines_run_in_the_same_harness(server, sandbox, tmp_path, method):
    result = _run(server, sandbox, tmp_path, method=method, budget=6)
    assert result.summary["method"] == method and result.summary["calls"] <= 6
    if method == "worldcoder":
        assert result.summary["train_accuracy"] == 1.0  # generate, fix, improve
    else:
        assert result.summary["train_accuracy"] is None  # generate alone never works here
    assert (tmp_path / "summary.json").exists() and (tmp_path / "tree.html").exists()


class Killed(Exception):
    pass


def test_killed_then_resumed_run_repeats_no_call(server, sandbox, tmp_path):
    reference_run = _run(server, sandbox, tmp_path / "whole")
    calls_whole = server.requests_by_path.get("/v1/chat/completions", 0)
    server.reset_counts()

    def kill_after_two(harness, method):
        if harness.calls == 2:
            raise Killed

    with pytest.raises(Killed):
        _run(server, sandbox, tmp_path / "split", on_node=kill_after_two)
    before = server.requests_by_path.get("/v1/chat/completions", 0)
    resumed = _run(server, sandbox, tmp_path / "split", resume=True)
    after = server.requests_by_path.get("/v1/chat/completions", 0)
    assert resumed.summary["resumed"] and 0 < before < after
    assert after == calls_whole  # over both sessions, every call was sent exactly once
    assert resumed.best_program == reference_run.best_program
    assert resumed.summary["calls"] == reference_run.summary["calls"]


def test_identical_rerun_replays_from_cache_without_requests(server, sandbox, tmp_path):
    first = _run(server, sandbox, tmp_path / "first")
    again_dir = tmp_path / "again"
    again_dir.mkdir()
    shutil.copy(tmp_path / "first" / "cache.sqlite", again_dir / "cache.sqlite")
    server.reset_counts()
    again = _run(server, sandbox, again_dir)
    assert server.requests_total == 0
    assert again.best_program == first.best_program and again.summary["calls"] == first.summary["calls"]


def test_unreachable_endpoint_stops_the_run_with_its_url(sandbox, tmp_path):
    from synth.llm import LLMUnavailable

    config = LLMConfig(model="m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(LLMUnavailable, match="127.0.0.1:9"):
        synthesize("gymnax/CartPole", method="gif-mcts", budget=3, llm=config, out_dir=tmp_path, sandbox=sandbox)
    assert (tmp_path / "cache.sqlite").exists()


def test_token_limit_stops_the_run_cleanly(server, sandbox, tmp_path):
    from synth.budget import Budget

    result = _run(server, sandbox, tmp_path, limits=Budget(max_tokens=1))
    assert result.summary["calls"] == 1 and result.summary["stop_reason"].startswith("budget")
    assert server.requests_total == 1
    assert (tmp_path / "checkpoint.json").exists() and (tmp_path / "summary.json").exists()


def test_parallel_expansion_keeps_fix_chains_single(server, sandbox, tmp_path):
    result = _run(server, sandbox, tmp_path, concurrency=4, budget=12)
    log = [json.loads(line) for line in (tmp_path / "tree.jsonl").read_text().splitlines()]
    fixes_per_parent = {}
    for record in log:
        if record["action"] == "fix":
            fixes_per_parent[record["parent"]] = fixes_per_parent.get(record["parent"], 0) + 1
    assert fixes_per_parent and max(fixes_per_parent.values()) == 1
    assert result.summary["train_accuracy"] == 1.0
