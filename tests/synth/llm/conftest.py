"""The loopback OpenAI-compatible server every LLM client test talks to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synth.testing.llm_server import LLMTestServer


@pytest.fixture
def llm_server() -> Iterator[LLMTestServer]:
    """A running `LLMTestServer` with default options; tests tune its attributes."""
    with LLMTestServer() as server:
        yield server
