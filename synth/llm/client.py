"""An async client for any OpenAI-compatible chat-completions server.

The search needs many samples from servers that differ (OpenAI, vLLM, SGLang,
llama.cpp, Ollama), fail now and then, and cost money or GPU time. So this
client, built on the real `openai` package:

* asks for several samples with `n` where the server honours it and falls
  back to concurrent single requests where it does not (it notices fewer
  choices than asked, or a 400 to `n`, and remembers for the rest of the run);
* bounds the HTTP requests in flight with a semaphore;
* retries 408/409/429/5xx, connection errors, timeouts and malformed bodies
  with exponential backoff and jitter, honouring Retry-After; the `openai`
  package's own retries are off so these are the only ones;
* ends every failure in a typed `LLMError` the search can catch, record and
  go on from (catch `BudgetExceeded` first: it means stop);
* counts calls, HTTP requests, tokens and cost, and enforces a `Budget`;
* replays answers from a `ResponseCache` so a run repeats with no requests.

Empty content (the server answered, with nothing) is not an error: it comes
back as a `Completion` whose `empty` is True, is counted and cached like any
other answer, and is not retried, because a retry of the same request usually
spends the same tokens on the same nothing. The search records it as a
failed expansion.

The errors and how a server's failure maps to one are in `synth.llm.errors`;
the `Completion` record and the parsing of an answer in `synth.llm.response`.
Both are importable from here, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai

from synth.llm.budget import Budget, Ledger, Prices, UsageReport
from synth.llm.cache import ResponseCache, StoredResponse, cache_key, request_fingerprint
from synth.llm.errors import (
    BudgetExceeded,
    LLMError,
    LLMModelNotFound,
    LLMRequestRejected,
    LLMRetriesExhausted,
    LLMUnavailable,
    MalformedResponse,
    NRejected,
    describe,
    permanent_error,
    retry_after,
)
from synth.llm.response import Completion, Message, as_messages, parse_chat_completion

__all__ = [  # the errors and the sample record live in llm_errors / llm_response; import them from here
    "BudgetExceeded",
    "Completion",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMModelNotFound",
    "LLMRequestRejected",
    "LLMRetriesExhausted",
    "LLMUnavailable",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_API_KEY = "not-needed"  # local servers accept any key; the openai package demands one


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """Where to send requests and how hard to try.

    base_url and api_key default to OPENAI_BASE_URL / OPENAI_API_KEY, then to
    OpenAI's URL and a placeholder key (local servers need no real key).
    supports_n: None detects it on the first multi-sample call; True / False
    skip the detection. timeout is per HTTP request, in seconds. A retry waits
    for the server's Retry-After when it sends one, else for a jittered
    backoff_base * 2**attempt (at most backoff_max) seconds.
    """

    model: str
    base_url: str | None = None
    api_key: str | None = None
    prices: Prices | None = None
    timeout: float = 120.0
    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    max_concurrency: int = 8
    supports_n: bool | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("LLMConfig.model is required (the name the server serves, e.g. from GET <base_url>/models)")
        if self.max_concurrency < 1:
            raise ValueError(f"LLMConfig.max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"LLMConfig.max_retries must be >= 0, got {self.max_retries}")

    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")

    def resolved_api_key(self) -> str:
        return self.api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY


@dataclass
class _Session:
    """The transport of one event loop: httpx connections cannot cross loops."""

    loop: asyncio.AbstractEventLoop
    client: openai.AsyncOpenAI
    slots: asyncio.Semaphore


class LLMClient:
    """Samples completions; see the module docstring for what it guarantees.

    cache: a `ResponseCache` or the path of its SQLite file (None: no cache).
    budget: limits on calls, tokens and cost (`synth.llm.budget` says what counts).
    jitter_seed: seeds the backoff jitter, for reproducible retry timing.
    Use it as `async with LLMClient(...) as llm:` or call `aclose()` at the end.
    """

    def __init__(
        self,
        config: LLMConfig,
        *,
        cache: ResponseCache | str | Path | None = None,
        budget: Budget | None = None,
        jitter_seed: int | None = None,
    ) -> None:
        self.config = config
        self.base_url = config.resolved_base_url()
        self.cache = ResponseCache(cache) if isinstance(cache, (str, Path)) else cache
        self._owns_cache = isinstance(cache, (str, Path))
        self.ledger = Ledger(budget=budget, prices=config.prices)
        self._supports_n = config.supports_n
        self._jitter = random.Random(jitter_seed)
        self._session: _Session | None = None
        # `max_concurrency` over every event loop that uses this client and every client
        # made by `sharing` (each thread's loop has its own session and asyncio semaphore).
        self._slots_all_loops = threading.BoundedSemaphore(config.max_concurrency)

    def sharing(self, *, cache: ResponseCache | str | Path | None = None, budget: Budget | None = None) -> LLMClient:
        """A client for one of several runs in flight at once (threads, each with its own event loop).

        It sends to this client's endpoint under this client's `max_concurrency`,
        a limit over all the clients made here together; its response cache,
        budget and usage are its own, so each run counts and replays its calls.
        """
        client = LLMClient(self.config, cache=cache, budget=budget)
        client._slots_all_loops = self._slots_all_loops
        return client

    @property
    def supports_n(self) -> bool | None:
        """Whether the server honours `n` (None until a multi-sample call found out)."""
        return self._supports_n

    def usage(self) -> UsageReport:
        return self.ledger.report()

    async def complete(
        self,
        messages: str | Sequence[Message],
        *,
        n: int = 1,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        sample_offset: int = 0,
    ) -> list[Completion]:
        """`n` samples for one prompt (a string is one user message), in sample order.

        Parameters left as None are not sent (the server's defaults apply).
        `extra_body` passes server-specific parameters (e.g. vLLM's `top_k`).
        `sample_offset` numbers the samples from there: a search that asks the
        same prompt again passes how many samples it already has, so the
        repeat is a new sample (live and in the cache), not a replay.
        Raises `BudgetExceeded` before sending anything if the budget forbids
        `n` more calls, and another `LLMError` when the server fails for good.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if sample_offset < 0:
            raise ValueError(f"sample_offset must be >= 0, got {sample_offset}")
        msgs = as_messages(messages)
        given = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "seed": seed,
            "stop": stop if stop is None or isinstance(stop, str) else list(stop),
            "extra_body": dict(extra_body) if extra_body else None,
        }
        params = {k: v for k, v in given.items() if v is not None}

        refusal = self.ledger.reserve(n)
        if refusal is not None:
            raise BudgetExceeded(refusal)

        fingerprint = request_fingerprint(self.config.model, msgs, params)
        wanted = range(sample_offset, sample_offset + n)
        results: list[Completion | None] = [self._replay(fingerprint, i) for i in wanted]
        missing = [i for i, r in zip(wanted, results) if r is None]
        self.ledger.cached += n - len(missing)
        if missing:
            try:
                fetched = await self._fetch(msgs, params, fingerprint, missing)
            except LLMError:
                self.ledger.failed += len(missing)
                raise
            for i, completion in fetched.items():
                results[i - sample_offset] = completion
        done = [r for r in results if r is not None]
        self.ledger.empty += sum(c.empty for c in done)
        return done

    def complete_sync(self, messages: str | Sequence[Message], **kwargs: Any) -> list[Completion]:
        """`complete` for code without an event loop (not callable from inside one)."""

        async def run() -> list[Completion]:
            try:
                return await self.complete(messages, **kwargs)
            finally:
                await self.aclose()

        return asyncio.run(run())

    async def aclose(self) -> None:
        """Close the HTTP connections (and the cache if the client opened it); both reopen if used again."""
        if self._owns_cache and self.cache is not None:
            self.cache.close()
        session, self._session = self._session, None
        if session is not None and session.loop is asyncio.get_running_loop():
            await session.client.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- cache -------------------------------------------------------------

    def _replay(self, fingerprint: dict[str, Any], index: int) -> Completion | None:
        if self.cache is None:
            return None
        stored = self.cache.get(cache_key(fingerprint, index))
        if stored is None:
            return None
        return Completion(
            text=stored.text,
            index=index,
            finish_reason=stored.finish_reason,
            cached=True,
            prompt_tokens=stored.prompt_tokens,
            completion_tokens=stored.completion_tokens,
            tokens_estimated=stored.tokens_estimated,
        )

    def _store(self, fingerprint: dict[str, Any], completion: Completion) -> None:
        if self.cache is None:
            return
        stored = StoredResponse(
            text=completion.text,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            tokens_estimated=completion.tokens_estimated,
        )
        self.cache.put(cache_key(fingerprint, completion.index), stored, fingerprint=fingerprint,
                       sample_index=completion.index)

    # -- sampling ----------------------------------------------------------

    async def _fetch(
        self, msgs: list[dict[str, Any]], params: dict[str, Any], fingerprint: dict[str, Any], indices: list[int]
    ) -> dict[int, Completion]:
        """Samples for `indices`: one request with `n` if possible, else one request each.

        Samples that arrive are cached even when a sibling request fails, so
        a rerun does not pay for them again.
        """
        count = len(indices)
        choices: list[Completion] = []
        if count > 1 and self._supports_n is not False:
            try:
                choices = (await self._request(msgs, params, n=count))[:count]
            except NRejected:
                log.info("%s refused n=%d; sending concurrent single requests from now on", self.base_url, count)
                self._supports_n = False
            else:
                self._supports_n = len(choices) == count
                if not self._supports_n:
                    log.info("%s returned %d of n=%d choices; sending concurrent single requests from now on",
                             self.base_url, len(choices), count)
        outcomes: list[Any] = list(choices)
        if len(choices) < count:
            singles = [self._request(msgs, params, n=1) for _ in range(count - len(choices))]
            outcomes += [r[0] if isinstance(r, list) else r
                         for r in await asyncio.gather(*singles, return_exceptions=True)]
        samples = [c for c in outcomes if isinstance(c, Completion)]
        fetched = {i: dataclasses.replace(c, index=i) for i, c in zip(indices, samples)}
        for completion in fetched.values():
            self._store(fingerprint, completion)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return fetched

    def _connection(self) -> _Session:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.loop is not loop:
            client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self.config.resolved_api_key(),
                timeout=self.config.timeout,
                max_retries=0,  # ours are the only retries
            )
            self._session = _Session(loop, client, asyncio.Semaphore(self.config.max_concurrency))
        return self._session

    async def _request(self, msgs: list[dict[str, Any]], params: dict[str, Any], *, n: int) -> list[Completion]:
        """One chat-completions request, retried; its choices with their token shares."""
        session = self._connection()
        kwargs = dict(params, model=self.config.model, messages=msgs)
        if n > 1:
            kwargs["n"] = n
        attempts = self.config.max_retries + 1
        last: Exception | None = None
        for attempt in range(attempts):
            wait: float | None = None  # what the server asked for (Retry-After)
            async with session.slots, _holding(self._slots_all_loops):
                self.ledger.http_requests += 1
                try:
                    response = await session.client.chat.completions.create(**kwargs)
                    parsed = parse_chat_completion(response, msgs)
                    self.ledger.spend(parsed.prompt_tokens, parsed.completion_tokens,
                                      estimated=parsed.tokens_estimated)
                    return parsed.completions
                except openai.APIStatusError as e:
                    permanent = permanent_error(e, n=n, model=self.config.model, base_url=self.base_url)
                    if permanent is not None:
                        raise permanent from e
                    last, wait = e, retry_after(e.response.headers)
                except (openai.APIConnectionError, json.JSONDecodeError, MalformedResponse) as e:
                    last = e
            if attempt + 1 == attempts:
                break
            delay = wait if wait is not None else self._backoff(attempt)
            log.warning("LLM request to %s failed (%s); retry %d/%d in %.2f s",
                        self.base_url, describe(last), attempt + 1, attempts - 1, delay)
            self.ledger.retries += 1
            await asyncio.sleep(delay)
        assert last is not None
        if isinstance(last, openai.APIConnectionError) and not isinstance(last, openai.APITimeoutError):
            raise LLMUnavailable(
                f"cannot reach the LLM server at {self.base_url} after {attempts} attempt(s): {describe(last)}. "
                "Is it running, and is base_url (or OPENAI_BASE_URL) right, including the /v1 suffix?",
                base_url=self.base_url,
            ) from last
        raise LLMRetriesExhausted(
            f"LLM request to {self.base_url} (model {self.config.model!r}) failed {attempts} time(s); "
            f"last error: {describe(last)}",
            attempts=attempts,
        ) from last

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: clients that failed together spread out."""
        delay = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
        return delay / 2 + self._jitter.uniform(0, delay / 2)


@contextlib.asynccontextmanager
async def _holding(slots: threading.BoundedSemaphore):
    """Holds one of `slots`, which other threads' event loops share, without blocking this loop."""
    while not slots.acquire(blocking=False):
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        slots.release()
