"""The parent's end of a sandbox worker: its process and the JSON-lines protocol over its pipes.

`Worker` starts one worker (`isolation.worker_command`) in its own session
and temporary directory, copies it the transition splits it needs, sends
requests and reads replies with deadlines (one JSON object per line, never
pickle: a reply comes from a process that ran untrusted code), and kills,
reaps and cleans up after it. `result_from_dict` turns a reply back into a
ScoreResult, field by field. The other end is `cwm_jax.sandbox.worker_main`.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path

from cwm_jax import envs
from cwm_jax.sandbox.isolation import MiB, drop_uid, worker_command, worker_environment
from cwm_jax.sandbox.messages import MEMORY_PATTERN, SandboxError, signal_name
from cwm_jax.score.scoring import ScoreResult

__all__ = [
    "MAX_MESSAGE_BYTES", "MAX_STDERR_LOG_BYTES", "Worker", "WorkerDied", "WorkerSet", "result_from_dict", "stop_at_exit"
]

MAX_MESSAGE_BYTES = 64 * MiB
MAX_STDERR_LOG_BYTES = 4 * MiB


def _matplotlib_cache_dir() -> Path:
    """Where matplotlib keeps its font list, found without importing it (importing it costs ~1 s).

    Matplotlib's own rule on Linux: $MPLCONFIGDIR, else $XDG_CACHE_HOME/matplotlib, else ~/.cache/matplotlib.
    """
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"


def _ready(selector: selectors.BaseSelector, deadline: float) -> bool:
    """Waits for the selector's one descriptor until `deadline`: True when it is ready; TimeoutError past it."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    return bool(selector.select(remaining))


class WorkerDied(Exception):
    """The worker's pipe closed: it exited or was killed."""


class Worker:
    """One worker process and its pipe. Used by one thread at a time."""

    def __init__(self, *, memory_limit: int, warm_envs: Sequence[str], warm_splits: Sequence[str], test_ops: bool,
                 namespaces: list[str] | None):
        self.memory_limit = memory_limit
        self.namespaces = namespaces is not None
        self.tmpdir = tempfile.mkdtemp(prefix="cwm-sandbox-")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.drop_uid = drop_uid()
        if self.drop_uid is not None:  # the worker's own files, readable after it drops root
            os.chown(self.tmpdir, self.drop_uid, self.drop_uid)
        # The worker reads splits from a private copy of the cache, never writes the shared one.
        self.cache_dir = self._private_dir("cache")
        for env_id in warm_envs:
            self.provide_splits(env_id, warm_splits)
        matplotlib_dir = self._private_dir("matplotlib")
        self._copy_font_list(matplotlib_dir)
        config = {"warm_envs": list(warm_envs), "warm_splits": list(warm_splits), "test_ops": bool(test_ops)}
        command = worker_command(config, memory_limit=memory_limit, tmpdir=self.tmpdir, uid=self.drop_uid,
                                 namespaces=namespaces)
        environment = {**worker_environment(), "TMPDIR": self.tmpdir, "HOME": self.tmpdir,
                       "CWM_JAX_CACHE": self.cache_dir, "MPLCONFIGDIR": matplotlib_dir}
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.tmpdir,
                env=environment,
                close_fds=True,
                start_new_session=True,  # own process group: killpg reaches anything it starts
            )
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer = bytearray()
        self.ready = False
        self.info: dict = {}
        self.warmed: set[tuple[str, str]] = set()
        self.tasks = 0
        self.killed = False
        self.log_mark = 0  # size of the stderr log when the current request was sent

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _private_dir(self, name: str) -> str:
        """A new directory in the worker's directory, owned by the worker's uid."""
        path = os.path.join(self.tmpdir, name)
        os.mkdir(path)
        if self.drop_uid is not None:
            os.chown(path, self.drop_uid, self.drop_uid)
        return path

    @staticmethod
    def _copy_font_list(config_dir: str) -> None:
        """Gives the worker matplotlib's font list (gymnax imports matplotlib), which it cannot reach.

        Without it matplotlib scans the system fonts at every worker start: 1.3 s more (measured, loaded machine).
        """
        for path in _matplotlib_cache_dir().glob("fontlist-*.json"):
            shutil.copyfile(path, os.path.join(config_dir, path.name))

    def provide_splits(self, env_id: str, splits: Iterable[str]) -> None:
        """Copies the cached splits the worker will read into its private cache.

        A split missing from the shared cache (`CWM_JAX_CACHE`) is collected
        here first, by this (trusted) process, and written there atomically
        (`data.load_split`), so the next command finds it. The worker never
        writes the shared cache: it ran untrusted code, and a file it wrote
        could poison every later score. If the shared cache cannot be written,
        the worker collects the split into its private copy, as before.
        """
        from cwm_jax.data import transitions as data

        spec = envs.env_spec(env_id)
        if envs.is_registered(spec):  # the worker knows it from its records only, and probes the train states
            splits = dict.fromkeys(("train", *splits))
        for split in splits:
            source = data.cache_path(spec, split)
            if not source.is_file():
                try:
                    data.load_split(spec, split)
                except data.DataError:
                    pass
            target = Path(self.cache_dir) / source.relative_to(data.cache_dir().parent)
            if source.is_file() and not target.exists():
                if not target.parent.is_dir():
                    target.parent.mkdir()
                    if self.drop_uid is not None:
                        os.chown(target.parent, self.drop_uid, self.drop_uid)
                shutil.copyfile(source, target)
                target.chmod(0o444)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: dict, deadline: float) -> None:
        data = json.dumps(message).encode() + b"\n"
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_WRITE)
            while view:
                if not _ready(selector, deadline):
                    continue
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    continue
                except (BrokenPipeError, OSError):
                    raise WorkerDied from None
                view = view[written:]

    def receive(self, deadline: float) -> dict:
        """The next JSON message; raises TimeoutError past `deadline`, WorkerDied on EOF."""
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                newline = self._buffer.find(b"\n")
                if newline >= 0:
                    line = bytes(self._buffer[:newline])
                    del self._buffer[: newline + 1]
                    try:
                        message = json.loads(line)
                    except ValueError:
                        raise WorkerDied("malformed reply") from None
                    if not isinstance(message, dict):
                        raise WorkerDied("malformed reply")
                    return message
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise WorkerDied("reply too large")
                if not _ready(selector, deadline):
                    continue
                try:
                    chunk = os.read(fd, 1 << 20)
                except BlockingIOError:
                    continue
                except OSError:
                    raise WorkerDied from None
                if not chunk:
                    raise WorkerDied
                self._buffer += chunk

    def request(self, message: dict, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        self.send(message, deadline)
        return self.receive(deadline)

    def wait_ready(self, timeout_s: float) -> None:
        if self.ready:
            return
        message = self.receive(time.monotonic() + timeout_s)
        if message.get("op") != "ready":
            raise WorkerDied(f"unexpected first message {message.get('op')!r}")
        self.info = message
        self.ready = True
        self.warmed.update((env, split) for env, split in message.get("warmed", []))

    def mark_log(self) -> None:
        """Truncates a long stderr log and remembers where the next request's output starts."""
        try:
            if os.path.getsize(self.stderr_path) > MAX_STDERR_LOG_BYTES:
                os.truncate(self.stderr_path, 0)  # the worker writes with O_APPEND
            self.log_mark = os.path.getsize(self.stderr_path)
        except OSError:
            self.log_mark = 0

    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            with open(self.stderr_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(self.log_mark, handle.tell() - limit))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the worker's process group, reap it, close the pipes, remove its directory."""
        self.killed = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not hang
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask an idle worker to exit, then kill it anyway."""
        if self.ready and self.proc.poll() is None:
            try:
                self.send({"op": "exit"}, time.monotonic() + 0.5)
                self.proc.wait(timeout=timeout_s)
            except (TimeoutError, WorkerDied, subprocess.TimeoutExpired, OSError):
                pass
        self.kill()

    def exit_description(self) -> tuple[str, str, bool]:
        """(description, detail, looks_like_memory) of how the worker ended, after it died."""
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        tail = self.stderr_tail()
        lines = [line.strip() for line in tail.splitlines() if line.strip() and not line.startswith("    @")]
        detail = lines[-1][:300] if lines else ""
        for line in lines:
            if "Check failed" in line or "Fatal Python error" in line:
                detail = line[:300]
                break
        if code is None:
            description = "it did not exit"
        elif code < 0:
            description = f"killed by {signal_name(-code)}"
        elif self.namespaces and code > 128:  # the shell in the namespace reports a signal as 128 + n
            code = -(code - 128)
            description = f"killed by {signal_name(-code)}"
        else:
            description = f"exit status {code}"
        memory = bool(MEMORY_PATTERN.search(tail)) or code == -signal.SIGKILL
        return description, detail, memory


_RESULT_FIELDS = {field.name for field in dataclasses.fields(ScoreResult)}


def result_from_dict(payload) -> ScoreResult:
    """A ScoreResult from a worker's JSON reply, checked field by field."""
    if not isinstance(payload, dict) or "valid" not in payload:
        raise SandboxError("malformed reply from a sandbox worker")
    fields = {key: value for key, value in payload.items() if key in _RESULT_FIELDS}
    fields["valid"] = bool(fields["valid"])
    for key in ("error", "error_kind"):
        if fields.get(key) is not None:
            fields[key] = str(fields[key])
    if fields.get("error_line") is not None:
        fields["error_line"] = int(fields["error_line"])
    fields["summaries"] = dict(fields.get("summaries") or {})
    fields["counterexamples"] = str(fields.get("counterexamples") or "")
    fields["fingerprint"] = str(fields.get("fingerprint") or "")
    fields["seconds"] = float(fields.get("seconds") or 0.0)
    fields["artifact"] = str(fields.get("artifact") or "")
    return ScoreResult(**fields)


class WorkerSet:
    """The workers of one `Sandbox`, idle and busy: the state its finalizer needs (no reference to the Sandbox)."""

    def __init__(self):
        self.lock = threading.Condition()
        self.idle: list[Worker] = []
        self.busy: set[Worker] = set()
        self.closed = False

    def shutdown(self) -> None:
        with self.lock:
            self.closed = True
            idle, busy = list(self.idle), list(self.busy)
            self.idle.clear()
            self.lock.notify_all()
        for worker in idle:
            worker.stop()
        for worker in busy:  # their threads see EOF and raise SandboxClosedError
            worker.kill()


_ALL_SETS: weakref.WeakSet = weakref.WeakSet()  # every live WorkerSet, shut down at interpreter exit


def stop_at_exit(workers: WorkerSet) -> None:
    """Shuts `workers` down when the interpreter exits (if nothing closed them before)."""
    _ALL_SETS.add(workers)


def _shutdown_all() -> None:
    for workers in list(_ALL_SETS):
        workers.shutdown()


atexit.register(_shutdown_all)
