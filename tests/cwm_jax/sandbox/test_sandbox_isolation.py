"""Sandbox isolation: secrets, rlimits, namespaces, the read-only filesystem view, the uid drop.

Split from test_sandbox.py (which covers scoring, limits and the pool); see
docs/sandbox.md for what is protected with and without namespaces.
"""

from __future__ import annotations

import ast
import concurrent.futures
import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from cwm_jax import sandbox
from cwm_jax.sandbox import FILE_SIZE_LIMIT, GiB, Sandbox, SandboxClosedError
from cwm_jax.sandbox.testing import DebugSandbox
from tests.sandbox_support import ENV, REPO, child_processes, is_running, reference_program


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
    children_before = child_processes()
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
    assert child_processes() == children_before  # every worker reaped: no zombies, none left running
    assert not any(is_running(pid) for pid in pids)
    assert len(os.listdir("/proc/self/fd")) == fds_before  # every pipe closed
    assert not any(Path(d).exists() for d in dirs)
    with pytest.raises(SandboxClosedError):
        box.score(reference_program(), ENV)


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
