"""The sandbox: untrusted CWMs are scored in killable, resource-limited workers.

One warm Sandbox is shared by most tests (module fixture); tests that need a
fresh worker (environment, process bookkeeping) start their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cwm_jax import reference, sandbox
from cwm_jax.data import transitions as data
from cwm_jax.validate import validator
from cwm_jax.score.accuracy import Tolerance
from cwm_jax.sandbox import GiB, Sandbox, SandboxError
from cwm_jax.sandbox.worker_main import SplitCache, WorkerState
from tests.hostile_programs import HOSTILE
from tests.sandbox_support import ENV, REPO, is_running, reference_program

LOOP_TIMEOUT_S = 10.0
SLACK_S = 6.0  # killing, reaping and reporting after the limit


def _assert_reference_scores_one(box: Sandbox, tag: str) -> None:
    result = box.score(reference_program(tag), ENV)
    assert result.valid, result.error
    assert result.value == 1.0
    assert result.summary["n_transitions"] > 1000


# -- programs that get past the static validator and hang or explode ---------

TRACE_BOMB = '''\
import jax.numpy as jnp


def h4(x):
    for i in range(64):
        x = x * 1.0001 + 0.001
    return x


def h3(x):
    for i in range(64):
        x = h4(x)
    return x


def h2(x):
    for i in range(64):
        x = h3(x)
    return x


def h1(x):
    for i in range(64):
        x = h2(x)
    return x


def step(state, action):
    next_state = h1(state)
    return next_state.astype(jnp.float32), jnp.float32(1.0), jnp.bool_(False)
'''  # 64**4 = 16.8M operations unrolled while tracing: Python never finishes

FORI_BOMB = '''\
import jax.numpy as jnp
from jax import lax


def body(i, carry):
    m = jnp.cos(carry + i)
    return jnp.tanh(m @ m) * 0.5


def step(state, action):
    big = jnp.ones((1024, 1024)) * state[0]
    out = lax.fori_loop(0, 10000, body, big)
    next_state = state + out[0, 0] * 0.0
    return next_state.astype(jnp.float32), jnp.float32(1.0), jnp.bool_(False)
'''  # 10**4 matmuls of 1024x1024 per probe state: small to trace, hours to run

MEMORY_BOMB = '''\
import jax.numpy as jnp


def step(state, action):
    big = jnp.arange(1048576, dtype=jnp.float32) * state[0]
    big = jnp.sort(jnp.sin(big))
    big2 = jnp.sort(jnp.cos(big * state[1]))
    next_state = state + (big[0] + big2[0]) * 0.0
    return next_state.astype(jnp.float32), jnp.float32(1.0), jnp.bool_(False)
'''  # 4 MB per transition, vmapped over ~2300 transitions: about 19 GB


@pytest.mark.parametrize("program", [TRACE_BOMB, FORI_BOMB, MEMORY_BOMB], ids=["trace", "fori", "memory"])
def test_bombs_pass_the_static_validator(program):
    validator.validate(program)  # so only the sandbox stands between them and the caller


def test_reference_scores_one(box):
    _assert_reference_scores_one(box, "first")


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_program_is_rejected(box, case, tmp_path):
    canary = tmp_path / "canary"
    result = box.score(case.render(str(canary)), ENV, timeout_s=20)
    assert not result.valid
    assert result.error_kind == case.kind, result.error
    assert case.mentions.lower() in result.error.lower()
    assert not canary.exists()


# A Python integer squared 64 times while `step` is traced: no signal reaches it, only the kill.
INT_SQUARING = """import jax.numpy as jnp
def step(state, action):
    n = 3
    for i in range(64):
        n = n * n
    return state + n, jnp.float32(1.0), state[0] > 100.0
"""


def test_fit_stops_a_runaway_program_at_the_candidate_limit_not_the_fit_limit():
    with Sandbox(size=1, timeout_s=4) as small:
        report = small.fit(INT_SQUARING, ENV, timeout_s=300)
    assert not report.valid and report.error_kind == "timeout", report.error
    assert "longer than 4 s" in report.error
    assert report.seconds < 4 + SLACK_S + 30  # the worker's start and warm-up are not charged to the candidate


@pytest.mark.parametrize(
    "program, kind",
    [(TRACE_BOMB, "timeout"), (FORI_BOMB, "timeout"), (MEMORY_BOMB, "memory")],
    ids=["trace_bomb", "fori_bomb", "memory_bomb"],
)
def test_validated_bomb_is_stopped_and_next_candidate_scores(box, program, kind):
    start = time.perf_counter()
    # The memory bomb gets more time: on a loaded machine it can take over 10 s to reach the cap,
    # and it must be reported as memory, not as a timeout; it ends when the cap is hit.
    limit = LOOP_TIMEOUT_S if kind == "timeout" else 4 * LOOP_TIMEOUT_S
    result = box.score(program, ENV, timeout_s=limit)
    elapsed = time.perf_counter() - start
    assert not result.valid
    assert result.error_kind == kind, result.error
    assert elapsed < limit + SLACK_S
    if kind == "timeout":
        assert f"longer than {LOOP_TIMEOUT_S:g} s" in result.error
    else:
        assert "out of memory" in result.error and "GiB" in result.error
    _assert_reference_scores_one(box, f"after {kind}")  # a fresh worker, same answer


# -- the limits, independent of the validator (raw code via DebugSandbox) ------


def test_raw_infinite_loop_is_killed_within_the_limit(box):
    box.worker_info()  # a ready worker, so the limit is all that is measured
    pid = box.worker_pids()[0]
    result = box.exec_code("while True:\n    pass\n", timeout_s=3)
    assert result.error_kind == "timeout"
    assert 3 <= result.seconds < 3 + SLACK_S
    assert not is_running(pid)


def test_raw_allocation_of_50_gb_hits_the_memory_cap(box):
    code = textwrap.dedent("""\
        import numpy as np
        chunks = []
        for _ in range(500):  # 500 x 100 MB = 50 GB; RLIMIT_AS counts it untouched
            chunks.append(np.empty(100_000_000, np.uint8))
        result = len(chunks)
    """)
    result = box.exec_code(code, timeout_s=60)
    assert result.error_kind == "memory", result.error
    assert f"{box.memory_limit / GiB:.1f} GiB" in result.error


def test_raw_single_huge_allocation_hits_the_memory_cap(box):
    result = box.exec_code("import numpy as np\nresult = np.empty(50 * 10**9, np.uint8).sum()\n")
    assert result.error_kind == "memory", result.error


@pytest.mark.parametrize(
    "code, description",
    [("import os\nos._exit(3)\n", "exit status 3"),
     ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "SIGSEGV"),
     ("import os, signal\nos.kill(os.getpid(), signal.SIGABRT)\n", "SIGABRT")],
    ids=["os_exit", "segfault", "abort"],
)
def test_raw_crash_is_reported_and_worker_replaced(box, code, description):
    result = box.exec_code(code)
    assert result.error_kind == "crash", result.error
    assert description in result.error
    assert box.exec_code("result = 6 * 7").summaries["exec"]["result"] == "42"


def test_raw_code_runs_in_worker_not_here(box):
    result = box.exec_code("import os\nresult = os.getpid()")
    assert int(result.summaries["exec"]["result"]) != os.getpid()


def test_production_workers_have_no_test_operations():
    assert not Sandbox._test_ops  # what every Sandbox but DebugSandbox starts its workers with
    production = WorkerState({"test_ops": Sandbox._test_ops})
    for op in ("exec", "info"):
        assert production.handle(op, {"code": "result = 1"}) == {"ok": False, "error": f"unknown operation {op!r}"}
    assert WorkerState({"test_ops": True}).handle("exec", {"code": "result = 6 * 7"})["result"]["summaries"] == {
        "exec": {"result": "42"}}


def test_worker_split_cache_reads_each_split_once_read_only_and_patches_nothing(monkeypatch):
    reads = []
    read_from_disk = data.load_split
    monkeypatch.setattr(data, "load_split", lambda env, split: reads.append(split) or read_from_disk(env, split))
    patched = data.load_split
    cache = SplitCache()
    train = cache.load(ENV, "train")
    assert cache.load("CartPole", "train") is train and cache.load(ENV, "test") is not train
    assert reads == ["train", "test"]
    assert not any(field.flags.writeable for field in train)  # shared by every candidate: no one may change it
    state = WorkerState({})
    assert data.load_split is patched  # the worker passes its cache explicitly, it overrides nothing
    reads.clear()
    message = {"source": reference_program(), "env": ENV, "splits": ["train"], "counterexamples": 0,
               "tolerance": Tolerance()._asdict()}
    for _ in range(2):  # trusted code, scored here as a worker would
        assert state.score(message)["result"]["summaries"]["train"]["accuracy"] == 1.0
    assert reads == ["train"]  # scoring reads through the cache


def test_a_worker_records_the_transitions_no_cache_holds(monkeypatch, tmp_path):
    # The worker imports what recording needs (planners' episode loop) from its confined view of the project.
    monkeypatch.setenv("CWM_JAX_CACHE", str(tmp_path))
    with Sandbox(size=1, timeout_s=120) as fresh:
        result = fresh.score(reference.source("Catch"), "gymnax/Catch", counterexamples=0)
    assert result.valid, result.error
    assert result.value == 1.0


# -- isolation of a worker -----------------------------------------------------


def test_workers_exit_when_the_parent_dies(tmp_path):
    script = textwrap.dedent("""\
        import os
        from cwm_jax.sandbox.testing import DebugSandbox
        box = DebugSandbox()
        box.worker_info()
        worker = box._pool.idle[0]
        print(worker.pid, worker.tmpdir, flush=True)
        os._exit(0)  # no atexit, no close: only the worker's own watchdog can end it
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})  # the package is not installed
    pid, tmpdir = out.stdout.split()
    deadline = time.monotonic() + 10
    while (is_running(int(pid)) or Path(tmpdir).exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_running(int(pid))
    assert not Path(tmpdir).exists()


def test_worker_that_cannot_start_raises_sandbox_error():
    with Sandbox(memory_limit=256 << 20) as box:
        with pytest.raises(SandboxError, match="failed to start"):
            box.score(reference_program(), ENV)


# -- API -----------------------------------------------------------------------


def test_concurrent_callers_share_the_pool(box):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: box.score(reference_program(f"thread {i}"), ENV), range(3)))
    assert all(r.valid and r.value == 1.0 for r in results)

    async def two():
        return await asyncio.gather(box.ascore(reference_program("a"), ENV), box.ascore(reference_program("b"), ENV))

    assert [r.value for r in asyncio.run(two())] == [1.0, 1.0]


def test_rejected_in_parent_without_a_worker(box):
    result = box.score("import os\n", ENV)
    assert result.error_kind == "validation" and "os" in result.error


def test_several_splits_and_counterexamples(box):
    wrong = reference_program().replace("GRAVITY = 9.8", "GRAVITY = 9.81")
    result = box.score(wrong, ENV, splits=("train", "test"), counterexamples=2)
    assert result.valid and set(result.summaries) == {"train", "test"}
    assert result.value < 1.0
    assert result.counterexamples.count("Transition #") == 2


def test_a_looser_tolerance_reaches_the_worker(box):
    wrong = reference_program().replace("GRAVITY = 9.8", "GRAVITY = 9.81")  # about 1e-4 off after a step
    strict = box.score(wrong, ENV, counterexamples=0)
    loose = box.score(wrong, ENV, counterexamples=0, tolerance=Tolerance(1e-2, 1e-2, 1e-5, 1e-5))
    assert strict.summary["state_accuracy"] < 1.0 and loose.summary["state_accuracy"] == 1.0


def test_bad_arguments_raise(box):
    with pytest.raises(ValueError):
        box.score(reference_program(), ENV, splits=("nope",))
    for bad in ({"state_atol": -1e-5}, {"reward_rtol": float("nan")}, {"state_rtol": float("inf")}):
        with pytest.raises(ValueError, match="must be a finite number >= 0"):  # no bad Tolerance can be built
            Tolerance(**bad)
    with pytest.raises(KeyError):
        box.score(reference_program(), "gymnax/NoSuchEnv")


def test_score_file_unreadable(tmp_path):
    missing = sandbox.score_file(tmp_path / "missing.py", ENV)
    assert not missing.valid and missing.error_kind == "load" and "does not exist" in missing.error
    directory = sandbox.score_file(tmp_path, ENV)
    assert directory.error_kind == "load"
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00")
    assert sandbox.score_file(binary, ENV).error_kind == "load"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cwm_jax", "check", *args], capture_output=True, text=True,
                          timeout=180, cwd=REPO)


def test_cli_check_end_to_end(tmp_path):
    ok = _cli("cwm_jax/reference/cartpole.py", "--env", ENV, "--json")
    assert ok.returncode == 0, ok.stderr
    payload = json.loads(ok.stdout)
    assert payload["valid"] and payload["accuracy"] == 1.0

    bad = tmp_path / "bad.py"
    bad.write_text(TRACE_BOMB.replace("import jax.numpy as jnp", "import jax.numpy as jnp\nimport os", 1))
    rejected = _cli(str(bad), "--env", ENV)
    assert rejected.returncode == 1
    assert "rejected: line 2" in rejected.stderr and "os" in rejected.stderr
