"""Every output path of every subcommand, one rule: checked before the work, and the work never lost after it.

Before any work, `check_files` and `check_dirs` try each path for real (no
`os.access`, which answers yes to root for `/sys`): a file path is opened for
appending (and removed again if that created it), and a probe file is made
(and removed) in a directory or, if it does not exist yet, in its nearest
existing parent. A path that fails raises `UsageError`
(one `error:` line, exit 2, nothing run).

After the work, `write_output` writes a result; if that still fails (a full
disk, `/dev/full`), the result goes to a fallback file named after the
requested one, in the current directory or else the temporary directory, and
one `error:` line says where. The command then exits 1.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cwm_jax.errors import UsageError

__all__ = ["check_dirs", "check_files", "fallback_path", "write_json", "write_output"]


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_files(*paths: str | None) -> None:
    """UsageError unless each given file path can be written (None: the option was not given)."""
    for path in paths:
        if not path:
            continue
        target = Path(path)
        if target.is_dir():
            raise UsageError(f"cannot write {path}: it is a directory (give a file name)")
        if not target.parent.is_dir():
            raise UsageError(f"cannot write {path}: directory {str(target.parent)!r} does not exist")
        existed = target.exists()
        try:
            with open(target, "ab"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {_reason(exc)}") from None
        if not existed:
            try:
                target.unlink()
            except OSError:
                pass


def check_dirs(*paths: str | None) -> None:
    """UsageError unless each given output directory can hold new files (it, or its nearest existing parent,
    takes a probe file, removed at once); nothing is left behind, not even the directory."""
    for path in paths:
        if not path:
            continue
        target = Path(path)
        if target.exists() and not target.is_dir():
            raise UsageError(f"cannot write to {path}: it exists and is not a directory")
        existing = next(p for p in (target, *target.absolute().parents) if p.exists())
        if not existing.is_dir():
            raise UsageError(f"cannot write to {path}: {str(existing)!r} is not a directory")
        try:
            handle, probe = tempfile.mkstemp(prefix=".cwm-jax-probe-", dir=existing)
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            raise UsageError(f"cannot write to {path}: {_reason(exc)}") from None


def fallback_path(path: str, suffix: str = "") -> Path:
    """A new file for what could not be written to `path`: `cwm-jax-NAME-XXXX.SUFFIX` here, else in the temp dir.

    SUFFIX is `path`'s own, else `suffix` (what the content is: ".json", ".png", ...).
    """
    name = Path(path).name or "output"
    stem, suffix = Path(name).stem, Path(name).suffix or suffix
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        try:
            handle, fallback = tempfile.mkstemp(prefix=f"cwm-jax-{stem}-", suffix=suffix, dir=folder)
        except OSError:
            continue
        os.close(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(fallback, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        return Path(fallback)
    raise OSError(f"no writable directory for a fallback of {path}")


def write_output(path: str, write: Callable[[str], None], *, say: Callable[[str], None], error: Callable[[str], None],
                 what: str = "the result", suffix: str = "") -> bool:
    """`write(path)`; if it fails, `write(fallback)` and `error` says where. True when `path` was written.

    Raises:
      OSError: neither `path` nor a fallback could be written.
    """
    try:
        write(path)
    except OSError as exc:
        fallback = fallback_path(path, suffix)
        try:
            write(str(fallback))
        except OSError:
            fallback.unlink(missing_ok=True)
            raise exc from None
        error(f"cannot write {path}: {_reason(exc)}; saved {what} to {fallback} instead")
        return False
    say(f"wrote {path}")
    return True


def write_json(path: str, record: dict[str, Any]) -> None:
    """`record` as indented JSON with a final newline (the `--json PATH` files)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
