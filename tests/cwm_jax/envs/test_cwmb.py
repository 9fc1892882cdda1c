"""CWMB, the paper's 18 environments (`cwm_jax/envs/cwmb.py`): ids, recording the paper's way, Taxi, the bench rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cwm_jax import envs, reference
from cwm_jax.commands.bench import resolve_envs
from cwm_jax.data import cwmb_recording
from cwm_jax.data import transitions as data
from cwm_jax.envs import cwmb
from cwm_jax.envs.gymnasium_source import make_env
from cwm_jax.gymnasium_eval import _transition_table, oracle_model
from cwm_jax.score.accuracy import check
from cwm_jax.validate.loader import load_cwm
from synth.bench.benchmark import run_benchmark
from synth.bench.config import BenchConfig
from synth.bench.methods import parse_method
from synth.bench.report import write_results

TAXI = "gymnasium/Taxi-v4"
PENDULUM = "gymnasium/InvertedPendulum-v4"  # the cheapest MuJoCo task


def test_cwmb_is_the_papers_18_in_its_order_and_each_id_runs_here():
    ids = resolve_envs(["cwmb"])
    assert len(ids) == 18 and ids[:3] == ("gymnasium/Blackjack-v1", "gymnasium/CliffWalking-v1", TAXI)
    assert sum(e.planner == "mcts" for e in cwmb.CWMB) == 6 and sum(e.mujoco for e in cwmb.CWMB) == 11
    for found in cwmb.CWMB:
        if found.mujoco:
            pytest.importorskip("mujoco")
        make_env(found.gym_id).close()  # refused ids (Taxi-v3, CliffWalking-v0, Pusher-v4) are not in the table
        assert (found.paper_id == found.gym_id) or found.differs  # a renamed id says what differs


def test_discrete_envs_are_recorded_five_random_then_five_suboptimal():
    rows, meta = data.collect(envs.env_spec("gymnasium/CliffWalking-v1"), "train")
    returns = np.array([rows.reward[rows.episode == e].sum() for e in range(cwmb_recording.EPISODES)])
    assert meta["n_episodes"] == 10 and "5 uniformly random" in meta["policy"]
    assert np.bincount(rows.episode).max() <= cwmb_recording.DISCRETE_MAX_STEPS
    # Epsilon-greedy on value iteration's policy walks round the cliff; random walks fall off it, again and again.
    assert returns[5:].mean() > 10 * returns[:5].mean()
    assert np.median(returns[5:]) > -30


def test_value_iteration_finds_the_shortest_safe_path():
    env = make_env("CliffWalking-v1")
    greedy = cwmb_recording.value_iteration(env.unwrapped.P, 4)
    cell, total = 36, 0
    for _ in range(20):
        _, cell, reward, done = env.unwrapped.P[cell][int(greedy[cell])][0]
        total += reward
        if done:
            break
    assert total == -13  # up, 11 right along the cliff's edge, down


def test_continuous_envs_are_recorded_by_cem_with_growing_budgets():
    pytest.importorskip("mujoco")
    rows, meta = data.collect(envs.env_spec(PENDULUM), "train")
    returns = np.array([rows.reward[rows.episode == e].sum() for e in range(cwmb_recording.EPISODES)])
    assert "open-loop CEM" in meta["policy"] and np.bincount(rows.episode).max() <= cwmb_recording.MAX_STEPS
    assert returns[-3:].mean() > 1.5 * returns[:3].mean()  # 1-3 iterations against 16-25


def test_taxi_reference_is_exact_and_proven_on_gymnasiums_whole_table():
    model = load_cwm(reference.source(TAXI), TAXI)
    table = _transition_table(envs.env_spec(TAXI))
    assert len(table) == 500 * 6 and len(check(model, table).failures) == 0
    step, how = oracle_model(envs.env_spec(TAXI))
    assert "all 3000 (state, action) pairs" in how
    # One wall moved: the table proves it wrong where the held-out split may not.
    wrong = reference.source(TAXI).replace("[0, 1, 0, 1, 0],\n])", "[0, 1, 1, 1, 0],\n])")
    assert wrong != reference.source(TAXI)
    assert len(check(load_cwm(wrong, TAXI), table).failures) > 0


SMALL = BenchConfig(envs=(TAXI, PENDULUM), methods=(parse_method("reference"),), seeds=(0,), plan_seeds=2,
                    plan={"simulations": 4, "rollout_depth": 5, "num_rollouts": 2, "horizon": 4, "iterations": 1,
                          "samples": 8, "elites": 2}, devices=1, sandbox_workers=1)


@pytest.fixture(scope="module")
def small_cwmb(tmp_path_factory):
    """A two-env CWMB benchmark (Taxi, and InvertedPendulum without a reference), run locally."""
    pytest.importorskip("mujoco")
    out = tmp_path_factory.mktemp("cwmb")
    return out, {r["env"]: r for r in run_benchmark(SMALL, out, say=lambda text: None)}


def test_the_benchmark_gives_every_cwmb_env_a_row_beside_the_papers_figures(small_cwmb):
    out, records = small_cwmb
    taxi, mujoco = records[TAXI], records[PENDULUM]
    assert taxi["test_strict_accuracy"] == 1.0 and taxi["normalized_return"] == pytest.approx(1.0)
    assert mujoco["test_accuracy"] is None and mujoco["normalized_return"] is None
    assert "MuJoCo" in mujoco["note"] and mujoco["oracle_return"] > mujoco["random_return"]  # baselines measured
    table = write_results(list(records.values()), out, plots=False)
    assert "| Taxi-v3 (run: Taxi-v4) | 1.00 / 1.00 / 1.00 | 0.99 / 0.87 | 0.92 / 0.67 | " in table
    assert "| InvertedPendulum-v4 | N/A / N/A / N/A | 0.66 / 0.08 | 0.66 / 0.14 | " in table
    assert f"{mujoco['random_return']:.2f} -> {mujoco['oracle_return']:.2f} | no reference CWM: MuJoCo" in table
    assert "| Agent2World (2025) | GPT-4o-mini | 0.917 | 0.481 (all 18) |" in table
    again = run_benchmark(SMALL, out, resume=True, say=lambda text: None)  # nothing left to run
    assert {r["env"]: r["plan_seconds"] for r in again} == {e: r["plan_seconds"] for e, r in records.items()}


def test_the_ray_backend_gives_the_local_cwmb_rows(small_cwmb, tmp_path):
    pytest.importorskip("ray")
    _, local = small_cwmb
    on_ray = {r["env"]: r for r in run_benchmark(SMALL, tmp_path, ray_address="local", say=lambda text: None)}
    fields = ("test_strict_accuracy", "normalized_return", "model_return", "random_return", "oracle_return", "note")
    assert {e: [r.get(f) for f in fields] for e, r in on_ray.items()} == \
        {e: [r.get(f) for f in fields] for e, r in local.items()}


def test_mujoco_episodes_stop_at_the_cwmb_length_and_plan_says_so(tmp_path, capsys):
    from cwm_jax.commands import main as cli

    pytest.importorskip("mujoco")
    out = tmp_path / "plan.json"
    assert cli.main(["plan", "--env", PENDULUM, "--model", "oracle", "--seeds", "2", "--json", str(out)]) == 0
    assert f"episodes of at most {cwmb.MUJOCO_EPISODE_STEPS} steps" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert max(record["lengths"]) == cwmb.MUJOCO_EPISODE_STEPS  # balanced to the cap, not gymnasium's 1000
