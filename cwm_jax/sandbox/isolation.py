"""Isolation set-up of a sandbox worker: everything settled before any of its own code runs.

- `worker_environment`: the caller's environment minus secrets, CPU-only JAX;
- `default_memory_limit`, `FILE_SIZE_LIMIT`: its rlimits (address space,
  file size; no core dumps), set by the bootstrap before JAX is imported;
- `namespace_prefix`: the `unshare` command that gives it new mount, network
  and PID namespaces (and a user namespace unless the caller is root);
- `worker_command`: the command line that starts it: a fresh interpreter
  whose bootstrap records its inherited fds, sets the rlimits, loads
  `confine.py` by file path (so nothing of the package runs unconfined) and
  enters it, then hands over to `cwm_jax.sandbox.worker_main`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from cwm_jax.sandbox.confine import UNPRIVILEGED_UID

__all__ = [
    "BOOTSTRAP",
    "FILE_SIZE_LIMIT",
    "ISOLATIONS",
    "ROOT",
    "WORKER_PACKAGES",
    "GiB",
    "MiB",
    "default_memory_limit",
    "drop_uid",
    "namespace_prefix",
    "vm_bytes",
    "worker_command",
    "worker_environment",
]

GiB = 1 << 30
MiB = 1 << 20

FILE_SIZE_LIMIT = 256 * MiB
"""RLIMIT_FSIZE of a worker: the largest file it may write (its log, a transition split it collects)."""

ROOT = str(Path(__file__).resolve().parents[2])  # directory holding the cwm_jax package

# Variable names dropped from a worker's environment (upper-cased before matching).
_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD", "_CREDENTIALS")
_SECRET_FRAGMENTS = ("PASSWORD", "PASSWD", "API_KEY", "APIKEY", "SECRET", "CREDENTIAL", "AUTH", "PRIVATE_KEY",
                     "ACCESS_KEY", "SESSION_TOKEN")


def default_memory_limit() -> int:
    """Default address-space cap of a worker, in bytes: 4 GiB + 128 MiB per CPU beyond 4.

    With `MALLOC_ARENA_MAX=2` (set for workers) a warm worker that has scored
    the CartPole reference reserves about 0.9 GB of address space on 2 CPUs;
    XLA starts threads per CPU, each reserving its stack, which adds about
    110 MB per CPU (measured 1 -> 2 CPUs). Below about 1.5 GiB JAX cannot
    even start (thread creation fails or it segfaults).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 4 * GiB + 128 * MiB * max(0, cpus - 4)


_UNSHARE_FLAGS = ("--net", "--pid", "--fork", "--mount-proc", "--kill-child")
_namespace_prefix_cache: list[str] | None = None
_namespace_lock = threading.Lock()


def namespace_prefix() -> list[str] | None:
    """The `unshare` command that puts a worker in new mount, network and PID namespaces, or None.

    Unless the caller is root, also in a new user namespace whose root is the
    caller (the worker needs its capabilities to build its read-only view of
    the filesystem, `cwm_jax.sandbox.confine`, and then gives them up). None
    where util-linux `unshare` is missing or the kernel refuses (unprivileged)
    user namespaces (many containers, Ubuntu's AppArmor restriction). Probed
    once per process.
    """
    global _namespace_prefix_cache
    with _namespace_lock:
        if _namespace_prefix_cache is None:
            _namespace_prefix_cache = []
            unshare = shutil.which("unshare")
            user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
            command = [unshare or "unshare", *user, "--mount", *_UNSHARE_FLAGS]
            try:
                probe = subprocess.run([*command, "/bin/sh", "-c", "exit 7"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
            except (OSError, subprocess.TimeoutExpired):  # no `unshare`, or it hangs
                probe = None
            if probe is not None and probe.returncode == 7:
                _namespace_prefix_cache = command
        return list(_namespace_prefix_cache) or None


ISOLATIONS = ("auto", "namespaces", "process")


def _is_secret(name: str) -> bool:
    upper = name.upper()
    return upper.endswith(_SECRET_SUFFIXES) or any(part in upper for part in _SECRET_FRAGMENTS)


def worker_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a worker starts with: `environ` (default os.environ) minus secrets.

    Drops every variable whose upper-cased name ends in _KEY, _TOKEN, _SECRET,
    _PASSWORD, _CREDENTIALS or contains PASSWORD, API_KEY, SECRET, CREDENTIAL,
    AUTH, ACCESS_KEY (OPENAI_API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY,
    SSH_AUTH_SOCK, ...); keeps the rest (PATH, HOME, CWM_JAX_CACHE, JAX_*).
    Forces CPU-only JAX without GPU memory preallocation.
    """
    source = os.environ if environ is None else environ
    env = {name: value for name, value in source.items() if not _is_secret(name)}
    env.update({
        "JAX_PLATFORMS": "cpu",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "CUDA_VISIBLE_DEVICES": "",
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MiB of address space per arena otherwise
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "1"),
    })
    return env


def drop_uid() -> int | None:
    """The uid a worker switches to before JAX is imported: UNPRIVILEGED_UID for a root caller, else None."""
    return UNPRIVILEGED_UID if os.geteuid() == 0 else None


# Runs first in a worker (`python -I -c`), stdlib only: argv = memory limit, ROOT, config JSON.
BOOTSTRAP = (
    "import os, resource, sys\n"
    "fds = [fd for fd in map(int, os.listdir('/proc/self/fd')) if fd >= 0]\n"
    "def _alive(fd):\n"
    "    try:\n"
    "        os.fstat(fd); return True\n"
    "    except OSError:\n"
    "        return False\n"
    "fds = [fd for fd in fds if _alive(fd)]\n"
    "limit = int(sys.argv[1])\n"
    "if limit > 0:\n"
    "    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "import importlib.util, json\n"
    "config = json.loads(sys.argv[3])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (config['file_size_limit'],) * 2)\n"
    "sys.path.append(sys.argv[2])\n"
    "spec = importlib.util.spec_from_file_location('_cwm_confine', config['confine_path'])\n"
    "confine = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(confine)\n"
    "confine.enter(config)\n"
    "from cwm_jax.sandbox.worker_main import main\n"
    "main(sys.argv[3], fds)\n"
)


# The project's packages a worker imports: cwm_jax, and planners, whose episode loop records transitions.
WORKER_PACKAGES = ("cwm_jax", "planners")


def worker_command(config: Mapping, *, memory_limit: int, tmpdir: str, uid: int | None,
                   namespaces: list[str] | None) -> list[str]:
    """The command line that starts a worker with `config` (see `worker_main.main`) plus the isolation's keys.

    Args:
      config: the worker's own settings (warm-up, test operations).
      memory_limit: RLIMIT_AS in bytes, 0 for none.
      tmpdir: the worker's directory, its only writable place.
      uid: `drop_uid()`, passed in so the caller chowns the worker's files to the same uid.
      namespaces: `namespace_prefix()` to start it under `unshare`, or None for a plain process.
    """
    config = json.dumps({
        **config,
        "memory_limit": int(memory_limit),
        "tmpdir": tmpdir,
        "file_size_limit": FILE_SIZE_LIMIT,
        "package_dirs": [os.path.join(ROOT, name) for name in WORKER_PACKAGES],
        "confine_path": os.path.join(ROOT, "cwm_jax", "sandbox", "confine.py"),
        "namespaces": namespaces is not None,
        "drop_uid": uid,
        "outer_uid": os.getuid(),
        "outer_gid": os.getgid(),
    })
    command = [sys.executable, "-I", "-c", BOOTSTRAP, str(int(memory_limit)), ROOT, config]
    if namespaces is not None:
        # A shell as PID 1 of the new PID namespace, so the worker is not PID 1 (which ignores
        # signals it sends itself) and its death by a signal shows as exit status 128 + signal.
        # The shell keeps the host's view of the filesystem: if the worker emptied its directory
        # (its parent died), the shell removes it (a mount point in the worker's view).
        command = [*namespaces, "/bin/sh", "-c", '"$@"; status=$?; rmdir "$0" 2>/dev/null; exit $status',
                   tmpdir, *command]
    return command


def vm_bytes() -> int:
    """This process's address space in bytes (what RLIMIT_AS caps), 0 if unknown."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
