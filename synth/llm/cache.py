"""A persistent cache of LLM responses, so a run can be replayed offline.

A sampled completion is not reproducible from a `seed` on most servers, so
the cache stores each one under a hash of everything that determined it:
model, messages, sampling parameters and the sample's index. `n` itself is
not part of the key, so asking for 8 samples after asking for 4 reuses the
first 4. The base URL is not part of the key either: the same model name on
another server replays the same answers.

Storage is one SQLite file in WAL mode. Each operation is its own short
transaction on a connection kept per thread and process (closing the last
connection checkpoints the WAL with an fsync, which would cost ~20 ms per
operation if each opened its own). That keeps it safe for many coroutines of
one process and for several processes sharing the file; the first answer
stored under a key wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "StoredResponse", "cache_key", "request_fingerprint"]

_KEY_VERSION = "cwm-jax-llm-cache-v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    tokens_estimated INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class StoredResponse:
    """One completion as the server gave it, with what it cost then."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool


def request_fingerprint(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The part of a request that decides its answers (everything but `n`)."""
    return {"model": model, "messages": [dict(m) for m in messages], "params": dict(params)}


def cache_key(fingerprint: Mapping[str, Any], sample_index: int) -> str:
    canonical = json.dumps(
        {"v": _KEY_VERSION, "request": fingerprint, "sample": sample_index},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """The SQLite file at `path` (created with its parent folders if missing)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._enable_wal()
        with self._transaction() as con:
            con.execute(_SCHEMA)

    def _enable_wal(self) -> None:
        """Switch the file to WAL, retrying while another process holds the lock.

        Changing the journal mode does not wait on SQLite's busy handler, so
        two processes opening a new cache at once would otherwise fail with
        "database is locked".
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                self._connection().execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, reopened after a fork (a connection must not cross one)."""
        con, pid = getattr(self._local, "con", None), getattr(self._local, "pid", None)
        if con is None or pid != os.getpid():
            con = sqlite3.connect(self.path, timeout=self._busy_timeout)
            # WAL with NORMAL sync cannot corrupt the file; a power cut may lose
            # the latest answers, which a cache can afford.
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con, self._local.pid = con, os.getpid()
        return con

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as con:  # commits, or rolls back on error
            yield con

    def close(self) -> None:
        """Close this thread's connection; the cache reopens it if used again."""
        con, self._local.con = getattr(self._local, "con", None), None
        if con is not None:
            con.close()

    def get(self, key: str) -> StoredResponse | None:
        with self._transaction() as con:
            row = con.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, tokens_estimated "
                "FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        text, finish_reason, prompt_tokens, completion_tokens, estimated = row
        return StoredResponse(text, finish_reason, prompt_tokens, completion_tokens, bool(estimated))

    def put(self, key: str, response: StoredResponse, *, fingerprint: Mapping[str, Any], sample_index: int) -> None:
        """Store `response` under `key` unless an answer is already stored there."""
        with self._transaction() as con:
            con.execute(
                "INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    fingerprint["model"],
                    sample_index,
                    json.dumps(fingerprint, sort_keys=True, ensure_ascii=False),
                    response.text,
                    response.finish_reason,
                    response.prompt_tokens,
                    response.completion_tokens,
                    int(response.tokens_estimated),
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._transaction() as con:
            return con.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
