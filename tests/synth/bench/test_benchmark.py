"""The benchmark (synth/bench/) against the scripted model on loopback, and sharded planning."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from cwm_jax import envs
from synth.bench import runner as bench
from cwm_jax.errors import UsageError
from synth.bench.benchmark import run_benchmark
from synth.bench.config import BenchConfig
from synth.bench.methods import parse_method
from cwm_jax.commands.bench import resolve_envs
from synth.bench.report import write_results
from synth.testing.llm_server import LLMTestServer
from synth.testing.scripted_llm import bench_responder

# Most of the time is JAX compilation (sandbox warm-up, one planner per policy): minutes on a loaded 2-core CPU.
pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[3]
ENVS = ("gymnax/CartPole", "gymnax/Catch")
# Planning kept small: the test checks the plumbing, docs/benchmark.md the figures. With these
# settings the oracle wins all 4 Catch episodes and random 3 of 4 (normalized return is defined).
GIF, ZERO_SHOT = "gif-mcts --no-fit", "zero-shot --no-fit"
TINY_PLAN = {"simulations": 4, "rollout_depth": 10, "num_rollouts": 2}


def small_config(model: str, base_url: str, **overrides) -> BenchConfig:
    # --no-fit: these tests follow the scripted calls; the fit step has tests of its own below.
    fields = dict(envs=ENVS, methods=(parse_method("gif-mcts --no-fit"), parse_method("zero-shot --no-fit")),
                  seeds=(0,), budget=3,
                  model=model, base_url=base_url, plan_seeds=4, plan=TINY_PLAN, devices=1, sandbox_workers=1)
    fields.update(overrides)
    return BenchConfig(**fields)


@pytest.fixture(scope="module")
def server():
    with LLMTestServer(responder=bench_responder) as srv:
        yield srv


@pytest.fixture(scope="module")
def small(server, tmp_path_factory):
    """The small benchmark: 2 envs x 2 methods x 1 seed, budget 3."""
    out = tmp_path_factory.mktemp("bench")
    config = small_config(server.model, server.base_url)
    records = run_benchmark(config, out, say=lambda text: None)
    return out, config, records, server.requests_total


def _by_task(records):
    return {(r["env"].split("/")[-1], r["method"]): r for r in records}


def test_small_benchmark_gives_the_expected_table(small):
    out, config, records, requests = small
    table = _by_task(records)
    assert set(table) == {(e, m) for e in ("CartPole", "Catch") for m in (GIF, ZERO_SHOT)}
    # gif-mcts: generate (crashes), fix (gravity 9.81), improve (correct) = 3 calls, solved.
    solved = table["CartPole", GIF]
    assert solved["calls"] == 3 and solved["train_accuracy"] == 1.0 and solved["test_accuracy"] == 1.0
    # zero-shot never gets the fix: no working program, scored 0.
    failed = table["CartPole", ZERO_SHOT]
    assert not failed["has_program"] and failed["test_accuracy"] == 0.0 and failed["calls"] == 3
    for method in (GIF, ZERO_SHOT):
        catch = table["Catch", method]
        assert catch["test_accuracy"] == 1.0 and catch["test_weighted_accuracy"] == 1.0
        assert catch["calls"] == 1  # solved by the first call
        # The model is the reference program, as exact as the oracle: it plans like the oracle.
        assert catch["model_return"] == catch["oracle_return"] and catch["normalized_return"] == 1.0
    assert requests == 3 + 3 + 1 + 1
    assert all(r["tokens"] > 0 and r["wall_seconds"] > 0 for r in records)

    text = write_results(records, out, config=config.to_json(), plots=False)
    assert "| Catch | 1.00 / 1.00 | 1.00 / 1.00 |" in text
    assert json.loads((out / "results.json").read_text()) == records
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert {"env", "method", "seed", "train_accuracy", "test_accuracy", "normalized_return", "calls"} <= set(header)


def test_resume_repeats_no_finished_task_and_no_answered_call(small, server, tmp_path):
    out, config, records, _ = small
    copy = tmp_path / "bench"
    shutil.copytree(out, copy)
    tasks = copy / "tasks"
    # A finished task, marked: a rerun would overwrite its record.
    finished = tasks / "CartPole" / "gif-mcts_no-fit" / "seed0" / "record.json"
    marked = dict(json.loads(finished.read_text()), marker="not rerun")
    finished.write_text(json.dumps(marked))
    # A task killed after its calls, before its record: it must finish from its checkpoint and cache.
    killed = tasks / "CartPole" / "zero-shot_no-fit" / "seed0"
    (killed / "record.json").unlink()
    (killed / "summary.json").unlink()
    server.reset_counts()
    with pytest.raises(UsageError, match="--resume"):
        run_benchmark(config, copy, say=lambda text: None)
    resumed = _by_task(run_benchmark(config, copy, resume=True, say=lambda text: None))
    assert server.requests_total == 0
    assert resumed["CartPole", GIF].get("marker") == "not rerun"
    before = _by_task(records)["CartPole", ZERO_SHOT]
    again = resumed["CartPole", ZERO_SHOT]
    for key in ("calls", "tokens", "train_accuracy", "test_accuracy", "normalized_return"):
        assert again[key] == before[key], key


def test_replay_reproduces_the_benchmark_without_requests(small, server, tmp_path):
    out, config, records, _ = small
    server.reset_counts()
    # Replay is about the calls: planning (plan_seeds 0) adds nothing to what it checks.
    no_planning = dataclasses.replace(config, plan_seeds=0)
    replayed = run_benchmark(no_planning, tmp_path / "again", replay_from=out, say=lambda text: None)
    assert server.requests_total == 0
    for old, new in zip(records, replayed):
        for key in ("env", "method", "calls", "has_program", "train_accuracy", "test_accuracy"):
            assert old[key] == new[key], (old["env"], old["method"], key)
        assert new["http_requests"] == 0 and new["tokens"] == 0  # replayed answers spend nothing


# Wall-clock of each phase: not a record of what a task did.
TIMES = {"synth_seconds", "score_seconds", "plan_seconds", "wall_seconds", "fit_seconds"}


@pytest.fixture(scope="module")
def on_ray(small, server, tmp_path_factory):
    """The small benchmark again, its tasks as Ray tasks on a local Ray instance (`--ray local`),
    2 at a time (the machine's 2 CPUs; concurrency is no part of a record)."""
    pytest.importorskip("ray")
    out, config, _, _ = small
    config = dataclasses.replace(config, concurrency=2)
    ray_out = tmp_path_factory.mktemp("ray")
    # Random and oracle returns are the benchmark's own cache (baselines/): the Ray tasks plan only their models.
    shutil.copytree(out / "baselines", ray_out / "baselines")
    server.reset_counts()
    said: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        def not_here(*args, **kwargs):
            raise AssertionError("a task ran in the driver, not in a Ray worker")

        patch.setattr(bench, "run_task", not_here)  # the workers import their own synth.bench.runner
        records = run_benchmark(config, ray_out, ray_address="local", say=said.append)
    return ray_out, config, records, server.requests_total, said


def test_ray_backend_gives_the_local_table(small, on_ray):
    out, config, records, _ = small
    ray_out, _, on_ray_records, requests, said = on_ray
    assert requests == 3 + 3 + 1 + 1 and any(line.startswith("  ray.init('local')") for line in said)
    assert "  2 Ray task(s) in flight, 1 LLM call(s) each at most" in said
    assert len(on_ray_records) == len(records)
    for local, remote in zip(records, on_ray_records):
        assert {k: v for k, v in remote.items() if k not in TIMES} == {k: v for k, v in local.items() if k not in TIMES}
    per_env = [write_results(r, d, config=config.to_json(), plots=False).split("\n\nAverages")[0]
               for r, d in ((records, out), (on_ray_records, ray_out))]
    assert per_env[0] == per_env[1] and "| Catch | 1.00 / 1.00 | 1.00 / 1.00 |" in per_env[1]
    assert json.loads((ray_out / "results.json").read_text()) == on_ray_records


def test_ray_resume_repeats_no_finished_task_and_no_answered_call(on_ray, server, tmp_path):
    ray_out, config, records, _, _ = on_ray
    copy = tmp_path / "ray"
    shutil.copytree(ray_out, copy)
    finished = copy / "tasks" / "CartPole" / "gif-mcts_no-fit" / "seed0" / "record.json"
    finished.write_text(json.dumps(dict(json.loads(finished.read_text()), marker="not rerun")))
    killed = copy / "tasks" / "CartPole" / "zero-shot_no-fit" / "seed0"
    (killed / "record.json").unlink()
    (killed / "summary.json").unlink()
    server.reset_counts()
    resumed = _by_task(run_benchmark(config, copy, resume=True, ray_address="local", say=lambda text: None))
    assert server.requests_total == 0
    assert resumed["CartPole", GIF].get("marker") == "not rerun"
    again, before = resumed["CartPole", ZERO_SHOT], _by_task(records)["CartPole", ZERO_SHOT]
    same = set(before) - TIMES - {"http_requests"}  # the resumed session sent none: its cache answered
    assert {k: again[k] for k in same} == {k: before[k] for k in same} and again["http_requests"] == 0


def test_cli_ray_local_writes_the_table(tmp_path):
    """`--ray local` from the script in experiments/ (whose directory Ray would put on the workers' path,
    where experiments/synth.py hides the synth package), run from another directory."""
    pytest.importorskip("ray")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "benchmark.py"), "--envs", "Catch", "--methods", "reference",
         "--plan-seeds", "0", "--no-plots", "--ray", "local", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ray.init('local')" in proc.stdout and "| Catch | 1.00 / N/A |" in proc.stdout


def test_ray_missing_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    """Without ray installed (blocked here), --ray is a usage error before anything is written."""
    from cwm_jax.commands import main as cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    status = cli.main(["bench", "--envs", "Catch", "--methods", "reference", "--ray", "local",
                       "--out", str(tmp_path / "b")])
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'error: --ray needs the ray package, which is not installed: pip install "cwm-jax[ray]"']
    assert not (tmp_path / "b").exists()


def test_value_is_forwarded_to_synthesize_and_recorded(tmp_path, monkeypatch):
    """--value strict reaches each task's search, its record and results.md; an older benchmark.json
    without the field resumes as value paper."""
    import synth.search.run

    seen = []

    def synthesize(env, **kwargs):  # no program found: nothing to score or plan
        seen.append(kwargs.get("value"))
        usage = dict.fromkeys(("calls", "failed_calls", "tokens", "prompt_tokens", "completion_tokens",
                               "http_requests", "fits"), 0)
        summary = dict(usage, cost=0.0, fit_seconds=0.0, stop_reason="budget", wall_seconds=0.1)
        return SimpleNamespace(best_program=None, summary=summary)

    monkeypatch.setattr(synth.search.run, "synthesize", synthesize)
    config = BenchConfig(envs=("gymnax/Catch",), methods=(parse_method("zero-shot --no-fit"),), seeds=(0,),
                         model="m", base_url="http://127.0.0.1:9/v1", value="strict", plan_seeds=0,
                         sandbox_workers=1, devices=1)
    [record] = run_benchmark(config, tmp_path, say=lambda text: None)
    assert seen == ["strict"] and record["value"] == "strict"
    assert "search value strict" in write_results([record], tmp_path, config=config.to_json(), plots=False)
    (tmp_path / "accuracy_vs_calls.png").write_bytes(b"stale")
    write_results([record], tmp_path, config=config.to_json(), plots=True)  # no task called an LLM: no empty plot
    assert (tmp_path / "accuracy.png").exists() and not (tmp_path / "accuracy_vs_calls.png").exists()
    assert json.loads((tmp_path / "benchmark.json").read_text())["value"] == "strict"
    with pytest.raises(UsageError, match="--value must be one of paper, strict"):
        run_benchmark(dataclasses.replace(config, value="best"), tmp_path / "x", say=lambda text: None)
    # A benchmark written before --value existed: resumed with the default, not refused.
    old = tmp_path / "old"
    paper = dataclasses.replace(config, value="paper")
    run_benchmark(paper, old, say=lambda text: None)
    recorded = json.loads((old / "benchmark.json").read_text())
    del recorded["value"]
    (old / "benchmark.json").write_text(json.dumps(recorded))
    assert run_benchmark(paper, old, resume=True, say=lambda text: None)[0]["value"] == "paper"
    assert seen == ["strict", "paper"]  # the finished task was not run again


def test_bad_method_and_flag_are_named():
    with pytest.raises(UsageError, match="unknown method 'gif'"):
        parse_method("gif")
    with pytest.raises(UsageError, match="no flag '--no-fix'"):
        parse_method("worldcoder --no-fix")
    with pytest.raises(UsageError, match="no flag '--no-fit'"):
        parse_method("fit-only --no-fit")
    assert parse_method("gif-mcts --no-fix").label == "gif-mcts --no-fix"
    assert parse_method("worldcoder --no-fit").slug == "worldcoder_no-fit"
    paper = parse_method("gif-mcts --paper-faithful --no-fit")  # the issue-22 comparison's second column
    assert paper.label == "gif-mcts --no-fit --paper-faithful"
    assert paper.paper_faithful and paper.ablations == () and not paper.fits
    assert not parse_method("gif-mcts").paper_faithful


def test_env_groups_keep_the_default_envs_and_the_unknown_variants_apart():
    unknown = resolve_envs(["unknown"])
    assert unknown == tuple(f"gymnax/{s.name}" for s in envs.VARIANT_SPECS) and "gymnax/CartPole-unknown" in unknown
    assert not set(unknown) & set(resolve_envs(["all"]))
    assert resolve_envs(["CartPole-unknown", "unknown"])[0] == "gymnax/CartPole-unknown"


def test_a_gymnasium_id_keeps_its_source_and_is_not_swapped_for_its_gymnax_twin():
    assert resolve_envs(["gymnasium/CartPole-v1", "CartPole-v1"]) == ("gymnasium/CartPole-v1", "gymnax/CartPole")


def test_fit_only_fits_the_reference_to_the_unknown_constants(tmp_path):
    """The reference CWM has the textbook constants; fitted to CartPole-unknown's data it is exact."""
    config = BenchConfig(envs=("gymnax/CartPole-unknown",), methods=(parse_method("fit-only"),), seeds=(0,),
                         plan_seeds=0, devices=1, sandbox_workers=1)
    [record] = run_benchmark(config, tmp_path, say=lambda text: None)
    assert record["fits"] == 1 and record["fit_seconds"] > 0 and record["fit_error"] is None
    assert {c["name"] for c in record["fit_changed"]} >= {"GRAVITY", "FORCE"}
    assert record["calls"] == 0 and record["train_accuracy"] == 1.0
    text = write_results([record], tmp_path, config=config.to_json(), plots=False)
    assert "| CartPole-unknown | 1.00 / N/A |" in text


def test_tasks_share_one_client_and_its_concurrency_limit(tmp_path):
    """3 tasks in flight 2 at a time, each wanting 2 calls at once: the shared client keeps it to 2 in all."""
    with LLMTestServer(latency=0.3) as server:  # its answers are no valid CWM: nothing to compile
        config = BenchConfig(envs=("gymnax/Catch",), methods=(parse_method("zero-shot --no-fit"),), seeds=(0, 1, 2),
                             budget=2, model=server.model, base_url=server.base_url, concurrency=2,
                             task_concurrency=2, plan_seeds=0, devices=1, sandbox_workers=1)
        records = run_benchmark(config, tmp_path, say=lambda text: None)
        assert server.requests_total == 6 and [r["calls"] for r in records] == [2, 2, 2]
        assert server.max_in_flight == 2


def test_cli_reference_writes_the_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "benchmark.py"), "--envs", "Catch", "--methods", "reference",
         "--plan-seeds", "0", "--no-plots", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "| Catch | 1.00 / N/A |" in proc.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "benchmark.py"), "--methods", "nope",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "unknown method 'nope'" in bad.stderr and "Traceback" not in bad.stderr


SHARDING_CHECK = textwrap.dedent("""
    import json
    import numpy as np
    import jax
    import planners
    from cwm_jax import envs

    # The random policy keeps compilation cheap; CartPole's episodes end at different steps,
    # so every device runs its own while-loop to a different length.
    spec = envs.make("gymnax/CartPole")
    env, params = spec.make_gymnax()
    plan = planners.random_policy(spec.random_action)
    keys = planners.seed_keys(6)  # not a multiple of 4: padded, then cut
    kw = dict(obs_fn=spec.flatten_obs, action_fn=spec.to_gymnax_action)
    one = planners.make_evaluate(env, params, plan, **kw)(keys)
    four = planners.make_evaluate(env, params, plan, mesh=planners.seed_mesh(4), **kw)(keys)
    print(json.dumps({"devices": len(jax.devices()), "used": len(four.episode_return.sharding.device_set),
                      "one": np.asarray(one.episode_return).tolist(), "four": np.asarray(four.episode_return).tolist(),
                      "one_len": np.asarray(one.length).tolist(), "four_len": np.asarray(four.length).tolist()}))
""")


def test_sharded_evaluation_on_four_devices_matches_one_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDING_CHECK], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4 and result["used"] == 4
    assert len(result["four"]) == 6
    assert result["one"] == result["four"] and result["one_len"] == result["four_len"]
    assert len(set(result["one"])) > 1  # different seeds, different episodes: the rows are not one seed copied
