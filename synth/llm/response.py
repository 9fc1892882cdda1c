"""What one chat-completions answer becomes: `Completion` samples with their share of the tokens.

`parse_chat_completion` checks an answer (a malformed one raises
`MalformedResponse`, which the client retries), reads its choices in order,
and splits the request's token usage over them (estimated at ~4 characters
per token when the server sent no usage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from openai.types.chat import ChatCompletion

from synth.llm.budget import estimate_tokens
from synth.llm.errors import MalformedResponse

__all__ = ["Completion", "Message", "ParsedResponse", "as_messages", "parse_chat_completion", "split_tokens"]

Message = Mapping[str, Any]


@dataclass(frozen=True)
class Completion:
    """One sample. Tokens are this sample's share of its request's usage
    (estimated at ~4 characters per token when the server sent no usage).
    `cached` samples were replayed and spent nothing in this run."""

    text: str
    index: int
    finish_reason: str | None
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool

    @property
    def empty(self) -> bool:
        return not self.text.strip()

    @property
    def truncated(self) -> bool:
        """The server stopped at max_tokens: any code in it is likely cut off."""
        return self.finish_reason == "length"


class ParsedResponse(NamedTuple):
    """The samples of one answer and the request's usage, which the ledger charges once."""

    completions: list[Completion]
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool


def as_messages(messages: str | Sequence[Message]) -> list[dict[str, Any]]:
    """A prompt string as one user message; a message list checked and copied."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out = [dict(m) for m in messages]
    if not out or any("role" not in m or "content" not in m for m in out):
        raise ValueError("messages must be a prompt string or a non-empty list of {'role': ..., 'content': ...}")
    return out


def parse_chat_completion(response: object, msgs: list[dict[str, Any]]) -> ParsedResponse:
    """Checks `response` and splits its tokens over its choices (prompt equally, completion by length)."""
    choices = getattr(response, "choices", None)
    if not isinstance(response, ChatCompletion) or not isinstance(choices, list) or not choices:
        raise MalformedResponse(f"not a chat completion: {str(response)[:120]!r}")
    texts: list[str] = []
    finishes: list[str | None] = []
    for choice in sorted(choices, key=lambda c: getattr(c, "index", 0) or 0):
        content = getattr(getattr(choice, "message", None), "content", None)
        if content is not None and not isinstance(content, str):
            raise MalformedResponse(f"choice content is {type(content).__name__}, not text")
        texts.append(content or "")
        finishes.append(getattr(choice, "finish_reason", None))
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    estimated = not (isinstance(prompt, int) and isinstance(completion, int))
    if estimated:
        prompt = estimate_tokens("".join(str(m.get("content") or "") for m in msgs))
        completion = sum(estimate_tokens(t) for t in texts)
    prompt_shares = split_tokens(prompt, [1] * len(texts))
    completion_shares = split_tokens(completion, [len(t) for t in texts])
    completions = [
        Completion(text=t, index=i, finish_reason=f, cached=False, prompt_tokens=p,
                   completion_tokens=c, tokens_estimated=estimated)
        for i, (t, f, p, c) in enumerate(zip(texts, finishes, prompt_shares, completion_shares))
    ]
    return ParsedResponse(completions, prompt, completion, estimated)


def split_tokens(total: int, weights: list[int]) -> list[int]:
    """Integer shares of `total` proportional to `weights` (equal if all are 0) that sum to it."""
    if sum(weights) == 0:
        weights = [1] * len(weights)
    shares = [total * w // sum(weights) for w in weights]
    shares[-1] += total - sum(shares)
    return shares
