"""The sandbox: untrusted CWMs are scored in killable, resource-limited workers.

One warm Sandbox is shared by most tests (module fixture); tests that need a
fresh worker (environment, process bookkeeping) start their own.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from cwm_jax import data, reference, sandbox, validator
from cwm_jax.sandbox import FILE_SIZE_LIMIT, GiB, Sandbox, SandboxClosedError, SandboxError
from cwm_jax.sandbox.testing import DebugSandbox
from cwm_jax.sandbox.worker_main import SplitCache, WorkerState
from tests.hostile_programs import HOSTILE

ENV = "gymnax/CartPole"
LOOP_TIMEOUT_S = 10.0
SLACK_S = 6.0  # killing, reaping and reporting after the limit
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def box():
    with DebugSandbox(size=1, timeout_s=20, warm_envs=[ENV]) as shared:
        yield shared


def _reference(tag: str = "") -> str:
    return reference.source(ENV) + f"\n# {tag}\n"


def _children(pid: int | None = None) -> dict[int, str]:
    """pid -> state letter of the direct children of `pid` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def _running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")


def _assert_reference_scores_one(box: Sandbox, tag: str) -> None:
    result = box.score(_reference(tag), ENV)
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


@pytest.mark.parametrize(
    "program, kind",
    [(TRACE_BOMB, "timeout"), (FORI_BOMB, "timeout"), (MEMORY_BOMB, "memory")],
    ids=["trace_bomb", "fori_bomb", "memory_bomb"],
)
def test_validated_bomb_is_stopped_and_next_candidate_scores(box, program, kind):
    start = time.perf_counter()
    result = box.score(program, ENV, timeout_s=LOOP_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    assert not result.valid
    assert result.error_kind == kind, result.error
    assert elapsed < LOOP_TIMEOUT_S + SLACK_S
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
    assert not _running(pid)


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
    message = {"source": _reference(), "env": ENV, "splits": ["train"], "counterexamples": 0}
    for _ in range(2):  # trusted code, scored here as a worker would
        assert state.score(message)["result"]["summaries"]["train"]["accuracy"] == 1.0
    assert reads == ["train"]  # scoring reads through the cache


# -- isolation of a worker -----------------------------------------------------


def test_worker_environment_drops_secrets():
    environ = {"OPENAI_API_KEY": "sk", "HF_TOKEN": "t", "AWS_SECRET_ACCESS_KEY": "s", "DB_PASSWORD": "p",
               "my_api_key": "k", "SSH_AUTH_SOCK": "/tmp/agent", "PATH": "/bin", "HOME": "/home/x",
               "CWM_JAX_CACHE": "/tmp/c", "JAX_ENABLE_X64": "0"}
    env = sandbox.worker_environment(environ)
    assert set(env) >= {"PATH", "HOME", "CWM_JAX_CACHE", "JAX_ENABLE_X64"}
    assert not set(env) & {"OPENAI_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "my_api_key",
                           "SSH_AUTH_SOCK"}
    assert env["JAX_PLATFORMS"] == "cpu" and env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_fresh_worker_is_isolated_and_leaves_nothing_behind(monkeypatch):
    """Secrets set here are absent there; CPU JAX, own cwd, capped memory, no fds; all reaped after.

    Uses isolation="process" (the fallback where namespaces are unavailable); the
    module's shared box covers "auto".
    """
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok")
    monkeypatch.setenv("CWM_SANDBOX_TEST_MARKER", "kept")
    children_before = _children()
    fds_before = len(os.listdir("/proc/self/fd"))
    limit = 3 * GiB
    box = DebugSandbox(size=2, timeout_s=20, memory_limit=limit, isolation="process")
    assert box.isolation == "process"
    try:
        info = box.worker_info()
        assert "OPENAI_API_KEY" not in info["environ"]
        assert "SOME_SERVICE_TOKEN" not in info["environ"]
        assert info["environ"]["CWM_SANDBOX_TEST_MARKER"] == "kept"
        assert info["environ"]["JAX_PLATFORMS"] == "cpu"
        assert info["jax_backend"] == "cpu"
        assert info["rlimit_as"] == [limit, limit]
        assert info["rlimit_core"] == [0, 0]
        assert info["ppid"] == os.getpid()
        assert Path(info["cwd"]).name.startswith("cwm-sandbox-") and info["cwd"] != os.getcwd()
        worker = next(w for w in box._pool.idle if w.pid == info["pid"])
        assert worker.info["initial_fds"] == [0, 1, 2]  # nothing inherited beyond pipes and the log
        assert box.exec_code("import os\nresult = os.environ.get('OPENAI_API_KEY')").summaries[
            "exec"]["result"] == "None"
        _assert_file_size_limited(box)
        if os.geteuid() == 0:  # without namespaces the uid drop alone guards the caller's files
            assert _exec_value(box, "import os\nresult = os.getresuid()") == (65534,) * 3
            _assert_caller_private_files_unreadable(box)
        # kill workers in every way, with both workers in use at once
        codes = ["while True:\n    pass\n", "import os\nos._exit(1)\n", "import numpy as np\nx = np.ones(10**10)\n"]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            kinds = [r.error_kind for r in pool.map(lambda c: box.exec_code(c, timeout_s=3), codes)]
        assert kinds == ["timeout", "crash", "memory"]
        # close() while a candidate runs: the caller gets SandboxClosedError, the worker is killed
        closer = concurrent.futures.ThreadPoolExecutor(1)
        running = closer.submit(box.exec_code, "while True:\n    pass\n", 60)
        time.sleep(1.0)
        dirs = [w.tmpdir for w in [*box._pool.idle, *box._pool.busy]]
        pids = box.worker_pids()
        assert len(pids) == 2
    finally:
        box.close()
    with pytest.raises(SandboxClosedError):
        running.result(timeout=10)
    closer.shutdown()
    assert box.closed
    assert _children() == children_before  # every worker reaped: no zombies, none left running
    assert not any(_running(pid) for pid in pids)
    assert len(os.listdir("/proc/self/fd")) == fds_before  # every pipe closed
    assert not any(Path(d).exists() for d in dirs)
    with pytest.raises(SandboxClosedError):
        box.score(_reference(), ENV)


@pytest.mark.skipif(sandbox.namespace_prefix() is None, reason="no namespaces here (see sandbox.namespace_prefix)")
def test_namespaces_hide_the_parent_and_the_network(box):
    assert box.isolation == "namespaces"
    info = box.worker_info()
    assert info["pid_namespace"] != os.readlink("/proc/self/ns/pid")
    assert info["net_namespace"] != os.readlink("/proc/self/ns/net")
    assert info["visible_pids"] == [1, info["pid"]]  # the namespace's init shell and the worker
    code = textwrap.dedent(f"""\
        import os, socket
        seen = os.path.exists('/proc/{os.getpid()}/environ')
        errors = []
        for host in ('127.0.0.1', '1.1.1.1'):
            try:
                socket.create_connection((host, 80), timeout=2).close()
                errors.append('connected')
            except OSError as exc:
                errors.append(type(exc).__name__)
        result = (seen, errors)
    """)
    seen, errors = eval(box.exec_code(code).summaries["exec"]["result"])  # noqa: S307 - repr of our own tuple
    assert not seen  # the parent's environment (with its API keys) is out of reach
    assert "connected" not in errors


def _exec_value(box: Sandbox, code: str):
    result = box.exec_code(textwrap.dedent(code))
    assert result.valid, result.error
    return ast.literal_eval(result.summaries["exec"]["result"])


def _read_attempts(box: Sandbox, paths: list[Path]) -> list[str]:
    """What the worker gets reading each path: 'read:<text>' or the exception's name."""
    return _exec_value(box, f"""\
        result = []
        for path in {[str(p) for p in paths]!r}:
            try:
                with open(path) as handle:
                    result.append('read:' + handle.read())
            except OSError as exc:
                result.append(type(exc).__name__)
    """)


def _assert_caller_private_files_unreadable(box: Sandbox) -> None:
    """A 0600 file of the caller is out of reach, in /tmp and (when root) in the worker's own directory."""
    outside = Path(tempfile.mkdtemp(prefix="cwm-private-"))  # in /tmp, traversable: only the file's mode guards it
    try:
        outside.chmod(0o755)
        files = {"outside": outside / "private.txt"}
        if os.geteuid() == 0:  # a place the worker sees and may write: only the uid drop guards the file there
            inside = Path(box.worker_info()["cwd"])
            files.update(inside=inside / "private.txt", control=inside / "public.txt")
        for name, path in files.items():
            path.write_text(name)
            path.chmod(0o644 if name == "control" else 0o600)
        outcome = dict(zip(files, _read_attempts(box, list(files.values()))))
        assert outcome.pop("control", "read:control") == "read:control"  # the worker can read its directory
        assert not any(text.startswith("read:") for text in outcome.values()), outcome
    finally:
        shutil.rmtree(outside)


def _assert_file_size_limited(box: Sandbox) -> None:
    limit, below, above = _exec_value(box, f"""\
        import errno, os, resource
        outcome = []
        with open('sparse', 'wb', buffering=0) as handle:  # sparse: costs no disk
            for offset in ({FILE_SIZE_LIMIT} - 1, {FILE_SIZE_LIMIT}):
                handle.seek(offset)
                try:
                    handle.write(b'x')
                    outcome.append('written')
                except OSError as exc:
                    outcome.append(errno.errorcode[exc.errno])
        os.unlink('sparse')
        result = (resource.getrlimit(resource.RLIMIT_FSIZE), *outcome)
    """)
    assert limit == (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT)
    assert (below, above) == ("written", "EFBIG")


@pytest.mark.skipif(sandbox.namespace_prefix() is None,
                    reason="needs mount namespaces (no user namespaces here): without them a worker may write "
                           "wherever its uid may, e.g. anywhere in /tmp")
def test_worker_writes_only_in_its_own_directory(box):
    watched = Path(tempfile.mkdtemp(prefix="cwm-watched-"))
    probe = Path(tempfile.gettempdir()) / f"cwm-probe-{os.getpid()}"
    in_package = REPO / "cwm_jax" / f"probe_{os.getpid()}.py"
    try:
        watched.chmod(0o777)  # writable by any uid: only the read-only view stops the worker
        targets = [watched / "file", probe, in_package]
        outcome, inside = _exec_value(box, f"""\
            import os
            outcome = []
            for path in {[str(t) for t in targets]!r}:
                try:
                    with open(path, 'x') as handle:
                        handle.write('x')
                    outcome.append('created')
                except OSError as exc:
                    outcome.append(type(exc).__name__)
            for make in (lambda: os.mkdir({str(watched / "dir")!r}),
                         lambda: os.symlink('/etc/passwd', {str(watched / "link")!r})):
                try:
                    make()
                    outcome.append('created')
                except OSError as exc:
                    outcome.append(type(exc).__name__)
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)  # undoing the view needs capabilities it gave up
            for name, call in (('umount /usr', lambda: libc.umount2(b'/usr', 2)),
                               ('remount / writable', lambda: libc.mount(None, b'/', None, 32, None))):
                outcome.append('created' if call() == 0 else name + ': ' + os.strerror(ctypes.get_errno()))
            with open('own-file', 'w') as handle:
                handle.write('x')
            result = (outcome, os.path.exists('own-file'))
        """)
        assert inside  # its own directory stays writable
        assert "created" not in outcome, outcome
        assert list(watched.iterdir()) == []
        assert not probe.exists() and not in_package.exists()
    finally:
        shutil.rmtree(watched)
        probe.unlink(missing_ok=True)
        in_package.unlink(missing_ok=True)


@pytest.mark.skipif(os.geteuid() != 0 and sandbox.namespace_prefix() is None,
                    reason="without namespaces a worker of a non-root caller runs as the caller's uid and can "
                           "read every file the caller can")
def test_worker_cannot_read_files_private_to_the_caller(box):
    _assert_caller_private_files_unreadable(box)


def test_worker_file_size_is_limited(box):
    _assert_file_size_limited(box)


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
    while (_running(int(pid)) or Path(tmpdir).exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(int(pid))
    assert not Path(tmpdir).exists()


def test_worker_that_cannot_start_raises_sandbox_error():
    with Sandbox(memory_limit=256 << 20) as box:
        with pytest.raises(SandboxError, match="failed to start"):
            box.score(_reference(), ENV)


# -- API -----------------------------------------------------------------------


def test_concurrent_callers_share_the_pool(box):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: box.score(_reference(f"thread {i}"), ENV), range(3)))
    assert all(r.valid and r.value == 1.0 for r in results)

    async def two():
        return await asyncio.gather(box.ascore(_reference("a"), ENV), box.ascore(_reference("b"), ENV))

    assert [r.value for r in asyncio.run(two())] == [1.0, 1.0]


def test_rejected_in_parent_without_a_worker(box):
    result = box.score("import os\n", ENV)
    assert result.error_kind == "validation" and "os" in result.error


def test_several_splits_and_counterexamples(box):
    wrong = _reference().replace("GRAVITY = 9.8", "GRAVITY = 9.81")
    result = box.score(wrong, ENV, splits=("train", "test"), counterexamples=2)
    assert result.valid and set(result.summaries) == {"train", "test"}
    assert result.value < 1.0
    assert result.counterexamples.count("Transition #") == 2


def test_bad_arguments_raise(box):
    with pytest.raises(ValueError):
        box.score(_reference(), ENV, splits=("nope",))
    with pytest.raises(KeyError):
        box.score(_reference(), "gymnax/NoSuchEnv")


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
