"""The typed failures of the LLM client, and how a server's error is classified into one.

Every failure ends in an `LLMError` the search can catch, record and go on
from (catch `BudgetExceeded` first: it means stop). `permanent_error` decides
whether an HTTP status is worth a retry; the other helpers turn the `openai`
package's exceptions into one-line descriptions for logs and messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import openai

__all__ = [
    "RETRYABLE_STATUS",
    "BudgetExceeded",
    "LLMError",
    "LLMModelNotFound",
    "LLMRequestRejected",
    "LLMRetriesExhausted",
    "LLMUnavailable",
    "MalformedResponse",
    "NRejected",
    "describe",
    "permanent_error",
    "retry_after",
    "says_model_missing",
    "server_message",
]

RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx


class LLMError(Exception):
    """Base of every error the client raises after its own retries."""


class LLMUnavailable(LLMError):
    """The server could not be reached at all (connection refused, DNS, ...)."""

    def __init__(self, message: str, *, base_url: str) -> None:
        super().__init__(message)
        self.base_url = base_url


class LLMModelNotFound(LLMError):
    """The server does not serve the configured model (HTTP 404 or its wording)."""

    def __init__(self, message: str, *, model: str, base_url: str) -> None:
        super().__init__(message)
        self.model = model
        self.base_url = base_url


class LLMRequestRejected(LLMError):
    """The server refused the request for good (400, 401, 403, 422, ...): retrying cannot help."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class LLMRetriesExhausted(LLMError):
    """Every attempt failed with a transient error (429, 5xx, timeout, malformed body)."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class BudgetExceeded(LLMError):
    """A call, token or cost budget forbids this call; nothing was sent. Stop the run."""


class MalformedResponse(Exception):
    """A 200 answer that is not a usable chat completion (the client retries it; never raised to callers)."""


class NRejected(Exception):
    """The server refused `n` > 1 (the client switches to concurrent single requests; never raised to callers)."""


def permanent_error(error: openai.APIStatusError, *, n: int, model: str, base_url: str) -> Exception | None:
    """The error to raise for a status no retry can fix, or None for a transient one (retry it)."""
    status, message = error.status_code, server_message(error)
    if status == 404 or (status in (400, 422) and says_model_missing(message)):
        return LLMModelNotFound(
            f"model {model!r} not found at {base_url} (HTTP {status}: {message}). "
            f"Check the model name against GET {base_url}/models, and that base_url ends in /v1.",
            model=model,
            base_url=base_url,
        )
    if status in RETRYABLE_STATUS or status >= 500:
        return None
    if n > 1 and status in (400, 422):
        return NRejected()
    hint = " Set api_key or OPENAI_API_KEY." if status in (401, 403) else ""
    return LLMRequestRejected(
        f"the LLM server at {base_url} rejected the request (HTTP {status}: {message}).{hint}",
        status_code=status,
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (Retry-After in seconds, or OpenAI's retry-after-ms)."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[name]) * scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def server_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return error.message


def says_model_missing(message: str) -> bool:
    text = message.lower()
    return "model" in text and any(s in text for s in ("not found", "does not exist", "unknown", "no such"))


def describe(error: BaseException | None) -> str:
    """One line for an error, without a final period (the caller's sentence goes on or ends it)."""
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}: {server_message(error)}".rstrip(".")
    if isinstance(error, json.JSONDecodeError):
        return f"malformed JSON body ({error.msg})"
    return f"{type(error).__name__}: {error}".rstrip(".")  # openai's "Connection error." gave "error.."
