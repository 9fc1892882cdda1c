"""The on-disk cache of recorded splits: where a split lives, and reading and writing one file atomically.

One `.npz` per (environment, split) under `cache_dir()`: the `Transitions`
fields as arrays plus a JSON `metadata` string (who recorded it, how, and the
environment's spaces, so a process that does not know the environment, such
as a sandbox worker, can still score on it: `cwm_jax.envs.recorded`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FORMAT_VERSION", "cache_dir", "read_split_file", "split_file", "write_split_file"]

FORMAT_VERSION = 1


def cache_dir() -> Path:
    """Where splits are cached: $CWM_JAX_CACHE, else ~/.cache/cwm_jax."""
    root = os.environ.get("CWM_JAX_CACHE") or Path.home() / ".cache" / "cwm_jax"
    return Path(root) / "transitions"


def split_file(source: str, name: str, split: str) -> Path:
    """The cache file of one split of the environment `<source>/<name>`."""
    stem = name if source == "gymnax" else f"{source}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
    return cache_dir() / f"{stem}-{split}-v{FORMAT_VERSION}.npz"


def read_split_file(path: Path, fields: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict]:
    """(the arrays named `fields`, the metadata) of one cache file.

    Raises:
      OSError, ValueError, KeyError: a missing, corrupt or foreign file.
    """
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["metadata"]))
        return {name: archive[name] for name in fields}, meta


def write_split_file(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Writes then renames, so a killed run never leaves a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, metadata=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
