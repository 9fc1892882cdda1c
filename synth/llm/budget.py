"""Accounting and budgets for LLM calls.

The search asks for completions; this module counts what each one cost and
says when a budget forbids the next. It raises nothing itself (the client
turns a refusal into `BudgetExceeded`), so it has no dependency on the client.

What counts:
* a *call* is one completion the search asked for: a request with `n=4` is
  four calls, whether the answers come from the server, from the cache, or
  the request fails. The call budget is honoured exactly: a call that would
  go past it is refused before anything is sent.
* *HTTP requests* are counted apart (retries and fan-out included), because
  a server without `n` needs several requests for one multi-sample call.
* *tokens* and *cost* are what the server spent: cached replays spend none.
  Token and cost budgets are checked before each call and stop the run once
  crossed; calls already in flight may finish, so the overshoot is at most
  what those calls spend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Budget", "Ledger", "Prices", "UsageReport", "estimate_tokens"]


@dataclass(frozen=True)
class Prices:
    """Prices in the user's currency per one million tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


@dataclass(frozen=True)
class Budget:
    """Limits for one run; None means unlimited. `max_cost` needs `Prices`."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_calls", "max_tokens", "max_cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Budget.{name} must be >= 0 or None, got {value}")


@dataclass(frozen=True)
class UsageReport:
    """A snapshot of a client's accounting (see the module docstring)."""

    calls: int
    cached: int
    failed: int
    empty: int
    http_requests: int
    retries: int
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool
    cost: float | None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_tokens(text: str) -> int:
    """About four characters per token: used only when the server sends no `usage`."""
    return math.ceil(len(text) / 4)


class Ledger:
    """Mutable accounting for one client. Not thread-safe: one event loop uses it."""

    def __init__(self, *, budget: Budget | None = None, prices: Prices | None = None) -> None:
        self.budget = budget or Budget()
        if self.budget.max_cost is not None and prices is None:
            raise ValueError("Budget.max_cost needs prices: pass prices=Prices(input_per_million=..., output_per_million=...)")
        self.prices = prices
        self.calls = 0
        self.cached = 0
        self.failed = 0
        self.empty = 0
        self.http_requests = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.tokens_estimated = False

    @property
    def cost(self) -> float | None:
        if self.prices is None:
            return None
        return self.prices.cost(self.prompt_tokens, self.completion_tokens)

    @property
    def remaining_calls(self) -> int | None:
        if self.budget.max_calls is None:
            return None
        return max(0, self.budget.max_calls - self.calls)

    def reserve(self, n: int) -> str | None:
        """Count `n` calls and return None, or return why they are refused (counting nothing)."""
        b = self.budget
        if b.max_calls is not None and self.calls + n > b.max_calls:
            return (
                f"call budget exhausted: {n} more call(s) would exceed max_calls={b.max_calls} "
                f"({self.calls} used)"
            )
        if b.max_tokens is not None and self.prompt_tokens + self.completion_tokens >= b.max_tokens:
            return f"token budget exhausted: {self.prompt_tokens + self.completion_tokens} tokens used, max_tokens={b.max_tokens}"
        cost = self.cost
        if b.max_cost is not None and cost is not None and cost >= b.max_cost:
            return f"cost budget exhausted: {cost:.6g} spent, max_cost={b.max_cost:g}"
        self.calls += n
        return None

    def spend(self, prompt_tokens: int, completion_tokens: int, *, estimated: bool) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.tokens_estimated |= estimated

    def report(self) -> UsageReport:
        return UsageReport(
            calls=self.calls,
            cached=self.cached,
            failed=self.failed,
            empty=self.empty,
            http_requests=self.http_requests,
            retries=self.retries,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            tokens_estimated=self.tokens_estimated,
            cost=self.cost,
        )
