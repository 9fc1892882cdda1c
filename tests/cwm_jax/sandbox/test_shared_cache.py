"""The transition cache the commands share (issue 25, item 5): the parent fills it, workers read copies."""

from __future__ import annotations

import types

from cwm_jax.data import transitions as data
from cwm_jax.sandbox.process import Worker


def test_a_missing_split_is_collected_into_the_shared_cache_and_copied_read_only(monkeypatch, tmp_path):
    monkeypatch.setenv("CWM_JAX_CACHE", str(tmp_path / "shared"))
    private = tmp_path / "private"
    private.mkdir()
    worker = types.SimpleNamespace(cache_dir=str(private), drop_uid=None)  # what provide_splits reads of a Worker
    Worker.provide_splits(worker, "gymnax/Catch", ["train"])
    shared = data.cache_path(data.envs.env_spec("gymnax/Catch"), "train")
    assert shared.is_file(), "the split was not written to the shared cache: the next command collects it again"
    copy = private / shared.relative_to(data.cache_dir().parent)
    assert copy.read_bytes() == shared.read_bytes() and not copy.stat().st_mode & 0o222
    before = shared.stat().st_mtime_ns
    monkeypatch.setattr(data, "collect", lambda *a, **k: (_ for _ in ()).throw(AssertionError("collected again")))
    (tmp_path / "p2").mkdir()
    Worker.provide_splits(types.SimpleNamespace(cache_dir=str(tmp_path / "p2"), drop_uid=None), "gymnax/Catch",
                          ["train"])
    assert shared.stat().st_mtime_ns == before
