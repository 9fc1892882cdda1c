"""What the LLM client's test modules share: the prompt, a fast client, and a way to run one completion."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from synth import Budget, LLMClient, LLMConfig
from synth.testing.llm_server import LLMTestServer

T = TypeVar("T")
CHAT = "/v1/chat/completions"
PROMPT = [{"role": "system", "content": "You write JAX."}, {"role": "user", "content": "Write step."}]
FIXED = "```python\ndef step(state, action):\n    return state\n```\n"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def client_for(server: LLMTestServer, *, cache: Any = None, budget: Budget | None = None, **config: Any) -> LLMClient:
    """A client with tiny timeouts and backoff so faults cost milliseconds."""
    settings: dict[str, Any] = dict(
        model=server.model, base_url=server.base_url, timeout=2.0, max_retries=3, backoff_base=0.01, backoff_max=0.05
    )
    settings.update(config)
    return LLMClient(LLMConfig(**settings), cache=cache, budget=budget, jitter_seed=0)


async def complete(client: LLMClient, messages: Any = PROMPT, **kwargs: Any) -> list[Any]:
    async with client:
        return await client.complete(messages, **kwargs)
