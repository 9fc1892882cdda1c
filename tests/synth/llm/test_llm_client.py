"""The LLM client against a real local OpenAI-compatible server (loopback only)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
import urllib.request
from typing import Any

import pytest

from synth import (
    Budget,
    BudgetExceeded,
    LLMClient,
    LLMConfig,
    LLMModelNotFound,
    LLMRequestRejected,
    LLMRetriesExhausted,
    LLMUnavailable,
    Prices,
    extract_code,
)
from synth.testing.llm_server import Fault, LLMTestServer
from tests.synth.llm.llm_support import CHAT, FIXED, PROMPT, client_for, complete, run


# -- basics ------------------------------------------------------------------


def test_one_completion_counts_calls_requests_and_usage(llm_server: LLMTestServer) -> None:
    client = client_for(llm_server)
    [c] = run(complete(client, temperature=0.5, max_tokens=256))
    assert "def step" in c.text and c.index == 0 and not c.cached and not c.empty
    sent = llm_server.chat_requests[0]
    assert sent["temperature"] == 0.5 and sent["max_tokens"] == 256 and "n" not in sent
    usage = client.usage()
    assert (usage.calls, usage.http_requests, usage.retries, usage.cached) == (1, 1, 0, 0)
    assert usage.completion_tokens == len(c.text) // 4 and not usage.tokens_estimated
    assert usage.cost is None


def test_env_vars_configure_a_local_server_without_a_key(llm_server: LLMTestServer, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = LLMClient(LLMConfig(model=llm_server.model))
    assert client.base_url == llm_server.base_url
    [c] = client.complete_sync("Write step.")
    assert "def step" in c.text
    assert llm_server.chat_headers[0]["authorization"] == "Bearer not-needed"
    assert llm_server.chat_requests[0]["messages"] == [{"role": "user", "content": "Write step."}]


def test_sync_wrapper_can_be_called_repeatedly(llm_server: LLMTestServer) -> None:
    client = client_for(llm_server)
    first = client.complete_sync(PROMPT)
    second = client.complete_sync(PROMPT)
    assert first[0].text != second[0].text and client.usage().calls == 2


# -- faults and retries ------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault.rate_limit(), Fault.server_error(), Fault.unavailable(), Fault.malformed_json(), Fault.slow(1.0)],
    ids=lambda f: f.kind,
)
def test_each_transient_fault_is_retried_once_and_survived(llm_server: LLMTestServer, fault: Fault) -> None:
    llm_server.inject(fault)
    client = client_for(llm_server, timeout=0.3)
    [c] = run(complete(client))
    assert "def step" in c.text
    assert llm_server.requests_by_path[CHAT] == 2
    usage = client.usage()
    assert (usage.calls, usage.http_requests, usage.retries, usage.failed) == (1, 2, 1, 0)


@pytest.mark.parametrize("fault", [Fault.rate_limit(retry_after=0.4), Fault.unavailable(retry_after=0.4)],
                         ids=lambda f: f.kind)
def test_retry_after_is_honoured(llm_server: LLMTestServer, fault: Fault) -> None:
    llm_server.inject(fault)
    client = client_for(llm_server, backoff_base=0.001)
    start = time.monotonic()
    run(complete(client))
    assert time.monotonic() - start >= 0.4
    assert llm_server.requests_by_path[CHAT] == 2


def test_several_faults_in_a_row_are_survived(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.rate_limit(retry_after=0.01), Fault.malformed_json(), Fault.server_error())
    client = client_for(llm_server)
    [c] = run(complete(client))
    assert "def step" in c.text and llm_server.requests_by_path[CHAT] == 4 and client.usage().retries == 3


@pytest.mark.parametrize(
    "fault, reported",
    [(Fault.server_error(), "HTTP 500"), (Fault.rate_limit(), "HTTP 429"), (Fault.malformed_json(), "malformed JSON")],
    ids=["500", "429", "malformed"],
)
def test_persistent_fault_ends_in_retries_exhausted(llm_server: LLMTestServer, fault: Fault, reported: str) -> None:
    llm_server.inject(*[fault] * 4)
    client = client_for(llm_server, max_retries=3)
    with pytest.raises(LLMRetriesExhausted, match=reported) as info:
        run(complete(client))
    assert info.value.attempts == 4 and llm_server.base_url in str(info.value)
    assert llm_server.requests_by_path[CHAT] == 4
    usage = client.usage()
    assert (usage.calls, usage.failed, usage.http_requests) == (1, 1, 4)


def test_timeouts_are_retried_then_reported(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.slow(1.0), Fault.slow(1.0))
    client = client_for(llm_server, timeout=0.2, max_retries=1)
    with pytest.raises(LLMRetriesExhausted, match="(?i)timed out"):
        run(complete(client))
    assert llm_server.requests_by_path[CHAT] == 2


def test_model_not_found_names_the_model_and_is_not_retried(llm_server: LLMTestServer) -> None:
    client = client_for(llm_server, model="no-such-model")
    with pytest.raises(LLMModelNotFound) as info:
        run(complete(client))
    assert "no-such-model" in str(info.value) and llm_server.base_url in str(info.value)
    assert info.value.model == "no-such-model"
    assert llm_server.requests_by_path[CHAT] == 1


def test_injected_404_is_model_not_found(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.model_not_found())
    with pytest.raises(LLMModelNotFound, match=llm_server.model):
        run(complete(client_for(llm_server)))


def test_unreachable_server_names_the_url() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    client = LLMClient(LLMConfig(model="m", base_url=url, max_retries=1, backoff_base=0.01, timeout=1.0))
    with pytest.raises(LLMUnavailable, match=url) as info:
        run(complete(client))
    assert info.value.base_url == url and client.usage().http_requests == 2


@pytest.mark.parametrize("status", [400, 401])
def test_permanent_4xx_is_rejected_without_retry(llm_server: LLMTestServer, status: int) -> None:
    llm_server.inject(Fault.http_error(status))
    with pytest.raises(LLMRequestRejected, match=f"HTTP {status}") as info:
        run(complete(client_for(llm_server)))
    assert info.value.status_code == status and llm_server.requests_by_path[CHAT] == 1
    assert ("OPENAI_API_KEY" in str(info.value)) == (status == 401)


@pytest.mark.parametrize("null_content", [False, True])
def test_empty_content_is_an_empty_completion_not_a_retry(llm_server: LLMTestServer, null_content: bool) -> None:
    llm_server.inject(Fault.empty(null_content=null_content))
    client = client_for(llm_server)
    [c] = run(complete(client))
    assert c.text == "" and c.empty
    assert llm_server.requests_by_path[CHAT] == 1 and client.usage().empty == 1


def test_truncated_answer_is_flagged(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.truncated())
    [c] = run(complete(client_for(llm_server)))
    assert c.truncated and c.finish_reason == "length"
    extraction = extract_code(c.text)
    assert extraction.truncated and extraction.method == "unclosed_fence"


# -- n and its fallback ------------------------------------------------------


def test_n_is_sent_when_the_server_supports_it(llm_server: LLMTestServer) -> None:
    client = client_for(llm_server)
    samples = run(complete(client, n=4))
    assert [c.index for c in samples] == [0, 1, 2, 3] and len({c.text for c in samples}) == 4
    assert llm_server.requests_by_path[CHAT] == 1 and llm_server.chat_requests[0]["n"] == 4
    assert client.supports_n is True
    usage = client.usage()
    assert (usage.calls, usage.http_requests) == (4, 1)
    assert sum(c.completion_tokens for c in samples) == usage.completion_tokens
    assert sum(c.prompt_tokens for c in samples) == usage.prompt_tokens


@pytest.mark.parametrize("n_mode, first_call_requests", [("one", 4), ("reject", 5)])
def test_fallback_to_concurrent_requests_is_remembered(llm_server: LLMTestServer, n_mode, first_call_requests) -> None:
    llm_server.n_mode = n_mode
    client = client_for(llm_server)

    async def two_calls() -> tuple[list[Any], list[Any]]:
        async with client:
            return await client.complete(PROMPT, n=4), await client.complete("other", n=3)

    first, second = run(two_calls())
    assert len(first) == 4 and len({c.text for c in first}) == 4 and len(second) == 3
    assert client.supports_n is False
    assert llm_server.requests_by_path[CHAT] == first_call_requests + 3
    assert all("n" not in r for r in llm_server.chat_requests[1:])
    usage = client.usage()
    assert (usage.calls, usage.http_requests) == (7, first_call_requests + 3)


def test_supports_n_false_never_sends_n(llm_server: LLMTestServer) -> None:
    samples = run(complete(client_for(llm_server, supports_n=False), n=3))
    assert len(samples) == 3 and llm_server.requests_by_path[CHAT] == 3
    assert all("n" not in r for r in llm_server.chat_requests)


def test_concurrency_limit_is_honoured(llm_server: LLMTestServer) -> None:
    llm_server.latency = 0.1
    client = client_for(llm_server, max_concurrency=3, supports_n=False)

    async def many() -> list[list[Any]]:
        async with client:
            return await asyncio.gather(*(client.complete(f"prompt {k}", n=2) for k in range(5)))

    results = run(many())
    assert sum(len(r) for r in results) == 10 and llm_server.requests_by_path[CHAT] == 10
    assert llm_server.max_in_flight == 3


# -- budgets -----------------------------------------------------------------


def test_call_budget_is_exact(llm_server: LLMTestServer) -> None:
    client = client_for(llm_server, budget=Budget(max_calls=5))

    async def spend() -> list[int]:
        got = []
        async with client:
            for n in (2, 2, 2, 1):
                try:
                    got.append(len(await client.complete(f"p{len(got)}", n=n)))
                except BudgetExceeded:
                    got.append(0)
            with pytest.raises(BudgetExceeded, match="max_calls=5"):
                await client.complete("one more")
        return got

    assert run(spend()) == [2, 2, 0, 1]
    assert client.usage().calls == 5 and client.ledger.remaining_calls == 0
    assert llm_server.requests_by_path[CHAT] == 3  # n=2, n=2, n=1


def test_failed_calls_count_against_the_call_budget(llm_server: LLMTestServer) -> None:
    llm_server.inject(Fault.model_not_found())
    client = client_for(llm_server, budget=Budget(max_calls=2))

    async def spend() -> None:
        async with client:
            with pytest.raises(LLMModelNotFound):
                await client.complete("a")
            await client.complete("b")
            with pytest.raises(BudgetExceeded):
                await client.complete("c")

    run(spend())
    assert client.usage().failed == 1 and llm_server.requests_by_path[CHAT] == 2


def _calls_until_budget(client: LLMClient) -> int:
    async def spend() -> int:
        done = 0
        async with client:
            while True:
                try:
                    await client.complete(PROMPT)
                except BudgetExceeded:
                    return done
                done += 1

    return run(spend())


def test_token_budget_stops_after_it_is_crossed(llm_server: LLMTestServer) -> None:
    llm_server.responder = lambda request: FIXED
    [probe] = run(complete(client_for(llm_server)))
    per_call = probe.prompt_tokens + probe.completion_tokens
    client = client_for(llm_server, budget=Budget(max_tokens=int(2.5 * per_call)))
    assert _calls_until_budget(client) == 3  # 2 calls stay under; the 3rd crosses; the 4th is refused
    assert client.usage().total_tokens == 3 * per_call


def test_cost_budget_uses_prices(llm_server: LLMTestServer) -> None:
    llm_server.responder = lambda request: FIXED
    prices = Prices(input_per_million=1_000.0, output_per_million=4_000.0)
    [probe] = run(complete(client_for(llm_server, prices=prices)))
    per_call = prices.cost(probe.prompt_tokens, probe.completion_tokens)
    client = client_for(llm_server, prices=prices, budget=Budget(max_cost=1.5 * per_call))
    assert _calls_until_budget(client) == 2
    assert client.usage().cost == pytest.approx(2 * per_call)


def test_cost_budget_without_prices_is_refused(llm_server: LLMTestServer) -> None:
    with pytest.raises(ValueError, match="prices"):
        client_for(llm_server, budget=Budget(max_cost=1.0))


def test_missing_usage_is_estimated_and_flagged(llm_server: LLMTestServer) -> None:
    llm_server.include_usage = False
    llm_server.responder = lambda request: FIXED
    client = client_for(llm_server)
    [c] = run(complete(client, "x" * 40))
    usage = client.usage()
    assert usage.tokens_estimated and c.tokens_estimated
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, math.ceil(len(FIXED) / 4))


def test_the_test_server_lists_its_models(llm_server: LLMTestServer) -> None:
    with urllib.request.urlopen(f"{llm_server.base_url}/models", timeout=5) as response:
        listing = json.load(response)
    assert [m["id"] for m in listing["data"]] == [llm_server.model]
    assert llm_server.requests_by_path == {"/v1/models": 1}
