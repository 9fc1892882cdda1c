"""Filesystem confinement and privilege drop of a sandbox worker (Linux; stdlib and ctypes only).

`enter` runs in a worker's bootstrap (`cwm_jax.sandbox.isolation.BOOTSTRAP`)
after its rlimits are set and before JAX or cwm_jax is imported. It is loaded
by file path, so importing it runs nothing of the package.

With namespaces (the worker was started by `unshare` and holds
CAP_SYS_ADMIN over its mount namespace: real root, or root of its own user
namespace) it builds a new root in a private mount namespace:

- a read-only tmpfs holding only read-only, nosuid bind mounts of the system
  directories (/usr, /lib*, /bin, /sbin, /etc), the Python installation
  (`sys.prefix`, `sys.base_prefix` and the interpreter's `sys.path`) and the
  `cwm_jax` package (not the repository around it: no `.env` files);
- the worker's temporary directory, read-write: the only writable place;
- a fresh /proc of the worker's PID namespace and a /dev with null, zero,
  full, random and urandom;

then `pivot_root`s into it and detaches the old root, so nothing else of the
host filesystem (home directories, /tmp, /root, the shared transition cache)
is reachable. Afterwards it gives up the capabilities it used: as real root
it switches to an unprivileged uid, otherwise it enters a nested user
namespace (its mounts are then locked: they cannot be unmounted or made
writable again).

Without namespaces, a worker started as root still switches to the
unprivileged uid; the interpreter's own directories that this uid cannot
reach (a Python under /root) stay importable through directory descriptors
opened before the switch.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = ["UNPRIVILEGED_UID", "enter", "read_only_paths"]

UNPRIVILEGED_UID = 65534
"""uid and gid a worker runs as when the caller is root (`nobody` on most systems)."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME = 1024, 2048, 1 << 21
_MNT_DETACH = 2
_PR_SET_NO_NEW_PRIVS = 38
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc")
_DEVICES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda text: None if text is None else os.fsencode(text)  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def _locked_flags(path: str) -> int:
    """Flags of the mount at `path` that a remount must keep (a user namespace may not clear them)."""
    flags = os.statvfs(path).f_flag
    kept = 0
    for statvfs_flag, mount_flag in ((os.ST_NOEXEC, _MS_NOEXEC), (os.ST_NOATIME, _MS_NOATIME),
                                     (os.ST_NODIRATIME, _MS_NODIRATIME), (os.ST_RELATIME, _MS_RELATIME)):
        if flags & statvfs_flag:
            kept |= mount_flag
    return kept


def _bind(source: str, target: str, *, writable: bool = False, devices: bool = False) -> None:
    """Binds `source` (not its submounts) at `target`, read-only and nosuid unless asked otherwise."""
    _mount(source, target, None, _MS_BIND)
    flags = _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _locked_flags(target)
    flags |= 0 if writable else _MS_RDONLY
    flags |= 0 if devices else _MS_NODEV
    _mount(None, target, None, flags)


def _make_target(new_root: str, path: str, is_dir: bool) -> str:
    target = new_root + path
    os.makedirs(target if is_dir else os.path.dirname(target), exist_ok=True)
    if not is_dir and not os.path.exists(target):
        with open(target, "w"):
            pass
    return target


def read_only_paths(package_dirs: list[str]) -> list[str]:
    """What a confined worker sees read-only: system directories, the interpreter, the project's packages.

    The repository around the packages is left out (it may hold `.env` files), even if it is on `sys.path`.
    """
    repositories = {os.path.dirname(path) for path in package_dirs}
    interpreter = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path]
    return [*_SYSTEM_DIRS, *(path for path in interpreter if path and os.path.isabs(path) and path not in repositories),
            *package_dirs]


def _build_root(new_root: str, read_only: list[str], writable: str) -> None:
    _mount("tmpfs", new_root, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=755,size=1m")
    bound: list[str] = []
    for path in sorted({os.path.realpath(p) for p in read_only if os.path.exists(p)}, key=len):
        if any(path == done or path.startswith(done.rstrip("/") + "/") for done in bound):
            continue  # already visible through a bound parent
        _bind(path, _make_target(new_root, path, os.path.isdir(path)))
        bound.append(path)
    for path in read_only:  # symlinks such as /lib -> usr/lib, /work/venv -> /opt/venv
        if os.path.islink(path) and not os.path.lexists(new_root + path):
            os.makedirs(os.path.dirname(new_root + path), exist_ok=True)
            os.symlink(os.readlink(path), new_root + path)
    _bind(writable, _make_target(new_root, writable, True), writable=True)
    _mount("proc", _make_target(new_root, "/proc", True), "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    dev = _make_target(new_root, "/dev", True)
    _mount("tmpfs", dev, "tmpfs", _MS_NOSUID | _MS_NOEXEC, "mode=755,size=64k")
    for name in _DEVICES:
        _bind(f"/dev/{name}", _make_target(new_root, f"/dev/{name}", False), writable=True, devices=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    _mount(None, dev, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NOEXEC)


def _pivot(new_root: str) -> None:
    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unsupported architecture {platform.machine()}")
    os.chdir(new_root)
    _check(_libc.syscall(number, b".", b"."), "pivot_root")  # the old root ends up under the new one
    _check(_libc.umount2(b".", _MNT_DETACH), "detach the old root")
    os.chdir("/")
    _mount(None, "/", None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def _enter_nested_user_namespace(uid: int, gid: int) -> None:
    """Leaves the capabilities of this user namespace (those that own the mounts) behind for good."""
    _check(_libc.unshare(_CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} 0 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} 0 1")


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _reachable_sys_path(descriptors: dict[str, int]) -> None:
    """After a uid switch: `sys.path` entries the new uid cannot reach go through descriptors opened before.

    Packages already imported from there (`collections`, `encodings`) get the same new `__path__`.
    """
    moved = {}
    for path, fd in descriptors.items():
        if os.access(path, os.R_OK | os.X_OK):
            os.close(fd)
        else:
            moved[path] = f"/proc/self/fd/{fd}"

    def reachable(path: str) -> str:
        for old, new in moved.items():
            if path == old or path.startswith(old + "/"):
                return new + path[len(old):]
        return path

    sys.path[:] = [reachable(path) for path in sys.path]
    for module in list(sys.modules.values()):
        if isinstance(getattr(module, "__path__", None), list):
            module.__path__[:] = [reachable(path) for path in module.__path__]


def enter(config: dict) -> None:
    """Confines this worker as `config` says; raises OSError if it cannot (the worker must not start then).

    Keys: "namespaces" (bool: started under `unshare`, build the read-only
    view), "tmpdir" (the one writable directory), "package_dirs" (the
    project's packages the worker imports), "drop_uid" (int or None: switch to this uid, the
    caller is root), "outer_uid"/"outer_gid" (the caller's ids, shown inside
    a nested user namespace).
    """
    tmpdir = config["tmpdir"]
    drop_uid = config.get("drop_uid")
    descriptors = {}
    if config.get("namespaces"):
        read_only = read_only_paths(config["package_dirs"])
        _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")  # the namespace's shell keeps the host view
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        new_root = os.path.join(tmpdir, "root")
        os.makedirs(new_root, exist_ok=True)
        _build_root(new_root, read_only, tmpdir)
        _pivot(new_root)
        os.chdir(tmpdir)
    elif drop_uid is not None:
        for path in sorted({path for path in sys.path if path and os.path.isdir(path)}, key=len):
            if not any(path.startswith(parent + "/") for parent in descriptors):  # reached through its parent
                descriptors[path] = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if drop_uid is not None:
        _drop_to(drop_uid)
        _reachable_sys_path(descriptors)
    elif config.get("namespaces"):
        _enter_nested_user_namespace(config["outer_uid"], config["outer_gid"])
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
