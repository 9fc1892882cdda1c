"""The LLM client's response cache: replays, keys, partial failures, two writers (loopback server only)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth import LLMRequestRejected, ResponseCache
from synth.testing.llm_server import Fault, LLMTestServer
from tests.synth.llm.llm_support import CHAT, PROMPT, client_for, complete, run


def test_second_run_replays_everything_with_zero_requests(llm_server: LLMTestServer, tmp_path: Path) -> None:
    cache = tmp_path / "llm.sqlite"

    async def a_run(client: LLMClient) -> list[str]:
        async with client:
            batches = await asyncio.gather(client.complete(PROMPT, n=3, temperature=0.8), client.complete("other"))
        return [c.text for batch in batches for c in batch]

    first = run(a_run(client_for(llm_server, cache=cache)))
    requests = llm_server.requests_total
    replay_client = client_for(llm_server, cache=cache)  # a new instance, the same file
    assert run(a_run(replay_client)) == first
    assert llm_server.requests_total == requests
    usage = replay_client.usage()
    assert (usage.calls, usage.cached, usage.http_requests, usage.total_tokens) == (4, 4, 0, 0)


def test_cache_is_keyed_on_sample_index_and_parameters(llm_server: LLMTestServer, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "llm.sqlite")

    async def calls() -> None:
        async with client_for(llm_server, cache=cache) as client:
            two = await client.complete(PROMPT, n=2, temperature=0.8)
            four = await client.complete(PROMPT, n=4, temperature=0.8)
            assert [c.text for c in four[:2]] == [c.text for c in two]
            assert [c.cached for c in four] == [True, True, False, False]
            assert llm_server.chat_requests[-1]["n"] == 2  # only the two new samples
            assert len(cache) == 4
            await client.complete(PROMPT, n=1, temperature=0.3)
            await client.complete(PROMPT, n=1, temperature=0.8, seed=1)
            await client.complete(PROMPT, n=1, temperature=0.8, max_tokens=100)

    run(calls())
    assert llm_server.requests_by_path[CHAT] == 5 and len(cache) == 7


def test_samples_that_arrived_are_cached_when_a_sibling_fails(llm_server: LLMTestServer, tmp_path: Path) -> None:
    llm_server.n_mode = "one"
    llm_server.inject(Fault.http_error(400))
    client = client_for(llm_server, cache=tmp_path / "c.sqlite", supports_n=False)

    async def calls() -> list[Any]:
        async with client:
            with pytest.raises(LLMRequestRejected):
                await client.complete(PROMPT, n=3)
            return await client.complete(PROMPT, n=3)

    samples = run(calls())
    assert [c.cached for c in samples] == [True, True, False]
    assert llm_server.requests_by_path[CHAT] == 4


def test_empty_completion_is_replayed_from_the_cache(llm_server: LLMTestServer, tmp_path: Path) -> None:
    llm_server.inject(Fault.empty())
    cache = tmp_path / "c.sqlite"
    run(complete(client_for(llm_server, cache=cache)))
    [c] = run(complete(client_for(llm_server, cache=cache)))
    assert c.cached and c.empty and llm_server.requests_by_path[CHAT] == 1


_WRITER = """
import importlib.util, pathlib, sys, time
spec = importlib.util.spec_from_file_location("cache", sys.argv[1])  # stdlib only: starts fast
cache_module = sys.modules["cache"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cache_module)
cache = cache_module.ResponseCache(sys.argv[2])
go = pathlib.Path(sys.argv[2] + ".go")
while not go.exists():  # both writers start writing together
    time.sleep(0.005)
for i in range(500):
    fp = {"model": "m", "messages": [], "params": {"writer": sys.argv[3]}}
    stored = cache_module.StoredResponse("x", "stop", 1, 1, False)
    cache.put(f"{sys.argv[3]}-{i}", stored, fingerprint=fp, sample_index=i)
"""


def test_cache_is_safe_for_two_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    module_file = sys.modules[ResponseCache.__module__].__file__
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(module_file), str(path), name]) for name in "ab"]
    time.sleep(0.2)
    Path(str(path) + ".go").touch()
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    cache = ResponseCache(path)
    assert len(cache) == 1000 and cache.get("a-499") is not None and cache.get("b-499") is not None


def test_sample_offset_makes_repeats_new_samples(llm_server, tmp_path):
    from synth.llm.client import LLMClient, LLMConfig

    config = LLMConfig(model=llm_server.model, base_url=llm_server.base_url, max_retries=0)
    client = LLMClient(config, cache=tmp_path / "cache.sqlite")
    first = client.complete_sync("same prompt", sample_offset=0)[0].text
    second = client.complete_sync("same prompt", sample_offset=1)[0].text
    assert first != second and llm_server.requests_total == 2
    replay = LLMClient(config, cache=tmp_path / "cache.sqlite")
    assert replay.complete_sync("same prompt", sample_offset=1)[0].text == second
    assert llm_server.requests_total == 2
